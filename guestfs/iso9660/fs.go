package iso9660

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/lru"
)

var _ guestfs.FS = (*FS)(nil)

// Bounds and cache budgets.
const (
	maxExtents     = 1 << 16 // records of one multi-extent file
	dirCacheBytes  = 4 << 20
	nodeCacheBytes = 2 << 20
	maxSerials     = 1 << 18 // remembered PX serial numbers; past it the map is cleared
	noSerialTag    = 1 << 62 // inode numbers of records without a serial on a volume with them
)

// extent is a run of a file's bytes on the volume.
type extent struct{ off, n int64 }

// node is a file as its directory record(s) and Rock Ridge entries say.
type node struct {
	ino     uint64
	name    string
	pos     int64 // the (first) record's volume offset
	flags   byte
	extents []extent
	size    int64
	date    time.Time
	rr      *rock
	// interleaved files (file unit size or gap set) are refused, as by
	// Linux.
	interleaved bool
}

// FS is an opened ISO 9660 volume.
type FS struct {
	r         io.ReaderAt
	size      int64
	blockSize int64
	rock      bool // Rock Ridge in the primary tree: its names and attributes are used
	joliet    bool // the Joliet tree is read (no Rock Ridge)
	suSkip    int  // SP's LEN_SKP: bytes to skip at the start of each system use area
	serials   bool // inode numbers are PX serial numbers
	root      *node

	dirs  *lru.Cache[int64, *dirInfo]
	nodes *lru.Cache[uint64, *node]

	mu        sync.Mutex
	serialPos map[uint64]int64 // PX serial -> the record's offset

	info guestfs.Info
}

// Open reads the volume descriptors and the root directory's "." record.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	fs := &FS{r: r, size: size, serialPos: map[uint64]int64{}}
	if !Probe(r, size) {
		return nil, fmt.Errorf("iso9660: no volume descriptor at sector 16: %w", guestfs.ErrNotFS)
	}
	pvd, joliet, err := fs.readVDs()
	if err != nil {
		return nil, err
	}
	fs.dirs = lru.New[int64, *dirInfo](dirCacheBytes)
	fs.nodes = lru.New[uint64, *node](nodeCacheBytes)
	fs.blockSize = pvd.blockSize
	var warn []string
	if vol := pvd.blocks * pvd.blockSize; vol < size {
		fs.size = vol
	} else if vol > size {
		warn = append(warn, fmt.Sprintf("the volume descriptor gives %d bytes, the volume has %d", vol, size))
	}
	rootRec, err := parseRecord(pvd.root, 16*sectorSize+156)
	if err != nil {
		return nil, err
	}
	// Rock Ridge: the root's "." record starts its system use area with
	// SUSP's SP entry (check bytes BE EF), which gives the bytes to skip.
	dot, err := fs.readRecord(rootRec.extent * fs.blockSize)
	if err != nil {
		return nil, fmt.Errorf("iso9660: root directory: %w", err)
	}
	if su := dot.su; len(su) >= 7 && string(su[:2]) == "SP" && su[2] >= 7 && su[4] == 0xBE && su[5] == 0xEF {
		fs.rock, fs.suSkip = true, int(su[6])
	}
	if !fs.rock && joliet != nil {
		// Joliet only where there is no Rock Ridge, as Linux chooses.
		fs.joliet, fs.blockSize = true, joliet.blockSize
		jr, err := parseRecord(joliet.root, 0)
		if err == nil {
			dot, err = fs.readRecord(jr.extent * fs.blockSize)
		}
		if err != nil {
			warn = append(warn, "Joliet tree unreadable, ISO 9660 names used: "+err.Error())
			fs.joliet, fs.blockSize = false, pvd.blockSize
			dot, err = fs.readRecord(rootRec.extent * fs.blockSize)
			if err != nil {
				return nil, fmt.Errorf("iso9660: root directory: %w", err)
			}
		}
	} else if fs.rock && joliet != nil {
		warn = append(warn, "Joliet names ignored: Rock Ridge is used, as Linux does")
	}
	root, err := fs.buildNode([]record{dot}, "", nil)
	if err != nil {
		return nil, fmt.Errorf("iso9660: root directory: %w", err)
	}
	if fs.rock && root.rr != nil && root.rr.serial != 0 {
		fs.serials = true
		root.ino = root.rr.serial
	}
	if root.flags&flagDir == 0 {
		return nil, fmt.Errorf("iso9660: the root record is not a directory: %w", guestfs.ErrCorrupt)
	}
	fs.root = root
	fs.rememberSerial(root)
	typ := "iso9660"
	fs.info = guestfs.Info{
		Type:      typ,
		Label:     labelOf(pvd, joliet),
		UUID:      uuidOf(pvd),
		BlockSize: int(fs.blockSize),
		Size:      min(size, pvd.blocks*pvd.blockSize),
		Warnings:  warn,
	}
	return fs, nil
}

// readRecord reads the record at pos, which must fit its 2048-byte sector.
func (fs *FS) readRecord(pos int64) (record, error) {
	end := (pos/sectorSize + 1) * sectorSize
	if pos < 0 || pos >= fs.size {
		return record{}, fmt.Errorf("iso9660: record at %d, outside the volume: %w", pos, guestfs.ErrCorrupt)
	}
	end = min(end, fs.size)
	b := make([]byte, min(end-pos, 255))
	if err := fs.readAt(b, pos); err != nil {
		return record{}, err
	}
	return parseRecord(b, pos)
}

// buildNode makes a node of a file's records (rr: their Rock Ridge
// entries when the caller parsed them already) (several for a multi-extent
// file), following a Rock Ridge CL entry to the relocated directory it
// stands for.
func (fs *FS) buildNode(recs []record, name string, rr *rock) (*node, error) {
	first := recs[0]
	n := &node{name: name, pos: first.pos, flags: first.flags, date: recordDate(first.date)}
	if fs.rock {
		if rr == nil {
			var err error
			if rr, err = fs.parseRock(&first); err != nil {
				return nil, err
			}
		}
		n.rr = rr
		if rr != nil && rr.cl {
			// The relocated directory's own "." record describes it; its
			// offset is the inode number, as for Linux.
			dot, err := fs.readRecord(rr.clBlock * fs.blockSize)
			if err != nil {
				return nil, fmt.Errorf("iso9660: record at %d: CL to block %d: %w", first.pos, rr.clBlock, err)
			}
			if dot.flags&flagDir == 0 {
				return nil, fmt.Errorf("iso9660: record at %d: CL to block %d, not a directory: %w", first.pos, rr.clBlock, guestfs.ErrCorrupt)
			}
			drr, err := fs.parseRock(&dot)
			if err != nil {
				return nil, err
			}
			if drr == nil {
				drr = &rock{}
			}
			drr.nm, drr.name = rr.nm, rr.name
			n.rr, n.pos, n.flags, n.date = drr, dot.pos, dot.flags, recordDate(dot.date)
			recs = []record{dot}
		}
	}
	for _, r := range recs {
		if r.unit != 0 || r.gap != 0 {
			n.interleaved = true
		}
		n.extents = append(n.extents, extent{off: (r.extent + r.xar) * fs.blockSize, n: r.size})
		n.size += r.size
	}
	n.ino = uint64(n.pos)
	if fs.serials {
		n.ino |= noSerialTag
		if n.rr != nil && n.rr.serial != 0 {
			n.ino = n.rr.serial
		}
	}
	return n, nil
}

// rememberSerial keeps where a serial's record is, for Stat.
func (fs *FS) rememberSerial(n *node) {
	if !fs.serials || n.ino&noSerialTag != 0 {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.serialPos) >= maxSerials {
		clear(fs.serialPos)
	}
	fs.serialPos[n.ino] = n.pos
}

// displayName is the name a record is listed under.
func (fs *FS) displayName(r *record, rr *rock) string {
	switch {
	case rr != nil && rr.nm:
		return rr.name
	case fs.joliet:
		return jolietName(r.name)
	}
	return plainName(r.name)
}

// Info describes the volume.
func (fs *FS) Info() guestfs.Info {
	i := fs.info
	i.Warnings = append([]string(nil), i.Warnings...)
	return i
}

// Root is the root directory's inode number.
func (fs *FS) Root() uint64 { return fs.root.ino }
