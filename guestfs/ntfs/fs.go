package ntfs

import (
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/lru"
)

var _ guestfs.FS = (*FS)(nil)

// Files of the MFT's first 16 records: the volume's metadata.
const (
	fileMFT       = 0
	fileVolume    = 3
	fileRoot      = 5
	fileUpCase    = 10
	fileFirstUser = 16
)

// Cache budgets, in bytes: assembled files, and directory index blocks.
const (
	nodeCacheBytes  = 4 << 20
	blockCacheBytes = 4 << 20
)

// FS is an opened NTFS volume.
type FS struct {
	r    io.ReaderAt
	size int64 // the bytes readable: the device's

	g          geometry
	mft        *stream
	mftRecords uint64
	up         upcase

	nodes  *lru.Cache[uint64, *node]
	blocks *lru.Cache[blockKey, []byte]
	units  *lru.Cache[unitKey, *[]byte]

	info guestfs.Info
}

// Open reads the boot sector, the $MFT's map, $UpCase and $Volume, and
// checks the root directory.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < bootSize {
		return nil, fmt.Errorf("ntfs: volume of %d bytes: %w", size, guestfs.ErrNotFS)
	}
	fs := &FS{r: r, size: size}
	b := make([]byte, bootSize)
	if err := fs.readVol(b, 0); err != nil {
		return nil, err
	}
	var err error
	if fs.g, err = parseBoot(b); err != nil {
		return nil, err
	}
	fs.nodes = newCache[uint64, *node](nodeCacheBytes)
	fs.blocks = newCache[blockKey, []byte](blockCacheBytes)
	fs.units = newCache[unitKey, *[]byte](unitCacheBytes)
	fs.units.SetEvict(func(b *[]byte) { unitPool.Put(b) })
	fs.info = guestfs.Info{
		Type:      "ntfs",
		UUID:      fmt.Sprintf("%016X", fs.g.serial),
		BlockSize: int(fs.g.clusterSize),
		Size:      int64(fs.g.sectors+1) * fs.g.sectorSize,
	}
	if fs.info.Size > size {
		fs.warn("the boot sector says the volume spans %d bytes, but only %d are there", fs.info.Size, size)
	}
	if err := fs.loadMFT(); err != nil {
		return nil, err
	}
	if fs.up, err = fs.loadUpcase(); err != nil {
		fs.warn("$UpCase unreadable (%v): names are compared with Unicode's upper case", err)
		fs.up = defaultUpcase()
	}
	if v, err := fs.node(fileVolume); err != nil {
		fs.warn("$Volume unreadable: %v", err)
	} else {
		fs.info.Label = v.volName
		if v.volFlags&0x0001 != 0 {
			fs.warn("the volume is marked dirty (not cleanly unmounted, or to be checked): read as it stands")
		}
	}
	root, err := fs.node(fileRoot)
	if err != nil {
		return nil, fmt.Errorf("ntfs: root directory: %w", err)
	}
	if !root.isDir() || root.indexRoot == nil {
		return nil, fmt.Errorf("ntfs: MFT record 5 is not a directory: %w", guestfs.ErrCorrupt)
	}
	return fs, nil
}

func (fs *FS) warn(format string, args ...any) {
	fs.info.Warnings = append(fs.info.Warnings, fmt.Sprintf(format, args...))
}

// loadMFT maps the $MFT: record 0's $DATA, and when the MFT is so
// fragmented that its runlist continues in extension records, those,
// found through the part the first extent maps.
func (fs *FS) loadMFT() error {
	b := make([]byte, fs.g.recordSize)
	if err := fs.readVol(b, fs.g.mftLCN<<fs.g.clusterShift); err != nil {
		return fmt.Errorf("ntfs: $MFT: %w", err)
	}
	rec, err := parseRecord(b, fileMFT)
	if err != nil {
		return err
	}
	if rec.flags&recInUse == 0 {
		return fmt.Errorf("ntfs: $MFT's record is not in use: %w", guestfs.ErrCorrupt)
	}
	var first *attr
	hasList := false
	for i := range rec.attrs {
		a := &rec.attrs[i]
		switch {
		case a.typ == atAttributeList:
			hasList = true
		case a.typ == atData && a.name == "" && a.lowVCN == 0 && first == nil:
			first = a
		}
	}
	if first == nil || !first.nonRes {
		return fmt.Errorf("ntfs: $MFT has no non-resident $DATA: %w", guestfs.ErrCorrupt)
	}
	// The first extent alone, its size cut to what it maps.
	s := &stream{nonRes: true, flags: first.flags}
	var vcn int64
	if s.runs, vcn, err = decodeRuns(nil, first.mapping, 0, fs.g.clusters, fs.g.clusterShift); err != nil {
		return fmt.Errorf("ntfs: $MFT: %w", err)
	}
	s.vcns = vcn
	s.size = min(first.dataSize, vcn<<fs.g.clusterShift)
	s.initSize = min(first.initSize, s.size)
	fs.setMFT(s)
	if hasList {
		attrs, err := fs.gatherAttrs(rec)
		if err != nil {
			return err
		}
		var pieces extents
		for _, a := range attrs {
			if a.typ == atData && a.name == "" {
				pieces = append(pieces, a)
			}
		}
		if s, err = fs.buildStream(pieces); err != nil {
			return fmt.Errorf("ntfs: $MFT: %w", err)
		}
		fs.setMFT(s)
	} else if first.dataSize > s.size {
		return fmt.Errorf("ntfs: $MFT of %d bytes maps only %d: %w", first.dataSize, s.size, guestfs.ErrCorrupt)
	}
	if s.compressed() || s.encrypted() || s.flags&attrSparse != 0 {
		return fmt.Errorf("ntfs: $MFT is compressed, encrypted or sparse: %w", guestfs.ErrCorrupt)
	}
	if fs.mftRecords < fileFirstUser {
		return fmt.Errorf("ntfs: $MFT holds %d records: %w", fs.mftRecords, guestfs.ErrCorrupt)
	}
	return nil
}

func (fs *FS) setMFT(s *stream) {
	fs.mft = s
	fs.mftRecords = uint64(s.size / fs.g.recordSize)
}

// Info describes the volume.
func (fs *FS) Info() guestfs.Info {
	i := fs.info
	i.Warnings = append([]string(nil), fs.info.Warnings...)
	return i
}

// Root is the root directory's MFT record number, 5.
func (fs *FS) Root() uint64 { return fileRoot }

// dirNode returns the directory ino.
func (fs *FS) dirNode(ino uint64) (*node, error) {
	n, err := fs.node(ino)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, fmt.Errorf("ntfs: file %d: %w", ino, guestfs.ErrNotDir)
	}
	k, err := fs.kindOf(n)
	if err != nil {
		return nil, err
	}
	if k.typ != guestfs.TypeDir {
		return nil, fmt.Errorf("ntfs: file %d is a junction or symlink: %w", ino, guestfs.ErrNotDir)
	}
	return n, nil
}
