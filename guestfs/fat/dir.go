package fat

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Directory entry attributes.
const (
	attrReadOnly = 0x01
	attrHidden   = 0x02
	attrSystem   = 0x04
	attrVolume   = 0x08
	attrDir      = 0x10
	attrArchive  = 0x20
	attrLFN      = 0x0F // a long-name slot: read-only, hidden, system and volume at once
	entrySize    = 32
	maxLFNSlots  = 20 // ceil(255 UTF-16 units / 13), as Linux bounds them
)

// dirKey names a directory by its first cluster; 0 is the FAT12/16 fixed
// root. Two entries naming one cluster share the cached parse.
type dirKey uint32

// dentry is one listed entry of a directory.
type dentry struct {
	name  string // the long name, else the short one
	short string // the 8.3 name as shown
	pos   int64  // the volume offset of the 8.3 entry: the inode number
	attr  byte
}

// dirInfo is a parsed directory: its size and subdirectory count for
// Stat, and its entries with a case-folded index for Lookup when they fit
// the cache (a directory too large for it is streamed each time).
type dirInfo struct {
	runs  []run
	bytes int64
	nsub  uint32
	ents  []dentry
	index map[string]int32
}

// errStop ends a scan early from inside its callback.
var errStop = errors.New("stop")

// lfnState assembles long-name slots, which precede their 8.3 entry in
// reverse order (the slot flagged 0x40 comes first, numbered highest).
// It follows Linux's fat_parse_long: a slot out of sequence or with
// another checksum drops what was gathered, and a gathered name whose
// checksum does not match the 8.3 entry that follows it is ignored.
type lfnState struct {
	want  int // the slot number expected next; 0: the 8.3 entry is next
	slots int // 0: no long name being gathered
	sum   byte
	units [maxLFNSlots * 13]uint16
}

func (l *lfnState) reset() { l.slots, l.want = 0, 0 }

func (l *lfnState) slot(e []byte) {
	id := int(e[0])
	if id&0x40 != 0 {
		n := id &^ 0x40
		if n == 0 || n > maxLFNSlots {
			l.reset()
			return
		}
		l.slots, l.want, l.sum = n, n, e[13]
		for i := range l.units[:n*13] {
			l.units[i] = 0
		}
	} else if l.slots == 0 || l.want == 0 || id != l.want || e[13] != l.sum {
		l.reset()
		return
	}
	lfnChars(e, l.units[(l.want-1)*13:l.want*13])
	l.want--
}

// name returns the gathered long name for the 8.3 entry e, or "".
func (l *lfnState) name(e []byte) string {
	defer l.reset()
	if l.slots == 0 || l.want != 0 || lfnChecksum(e) != l.sum {
		return ""
	}
	return decodeLFN(l.units[:l.slots*13])
}

// scanEntries parses a directory's raw entries in order, at volume offsets
// base, base+32, ..., calling fn for each listed one. It reports done at
// the end-of-directory mark (a first byte of 0).
func scanEntries(buf []byte, base int64, l *lfnState, fn func(*dentry) error) (done bool, err error) {
	for o := 0; o+entrySize <= len(buf); o += entrySize {
		e := buf[o : o+entrySize]
		switch {
		case e[0] == 0x00:
			return true, nil
		case e[0] == 0xE5:
			l.reset()
			continue
		case e[11]&0x3F == attrLFN:
			l.slot(e)
			continue
		case e[11]&attrVolume != 0:
			l.reset()
			continue
		}
		long := l.name(e)
		if e[0] == '.' && (string(e[1:11]) == "          " || string(e[1:11]) == ".         ") {
			continue
		}
		d := dentry{short: shortName(e), pos: base + int64(o), attr: e[11]}
		d.name = long
		if !validName(long) {
			d.name = d.short
		}
		if !validName(d.name) {
			continue // a hostile name ("/", NUL, empty) is not listed
		}
		if err := fn(&d); err != nil {
			return true, err
		}
	}
	return false, nil
}

// dirRuns is where a directory's entries are: nil runs for the fixed root.
func (fs *FS) dirRuns(k dirKey) ([]run, int64, error) {
	if k == 0 {
		return nil, fs.rootBytes, nil
	}
	runs, n, err := fs.chain(uint32(k), 0)
	if err != nil {
		return nil, 0, fmt.Errorf("directory at cluster %d: %w", k, err)
	}
	return runs, int64(n) * fs.clusterSize, nil
}

// scan streams a directory's entries, reading up to 64 KiB at a time.
func (fs *FS) scan(k dirKey, runs []run, fn func(*dentry) error) error {
	var l lfnState
	step := max(fs.clusterSize, 64<<10)
	total := fs.rootBytes
	if k != 0 {
		total = 0
		for _, r := range runs {
			total += int64(r.n) * fs.clusterSize
		}
	}
	step = min(step, max(total, entrySize))
	buf := make([]byte, step)
	read := func(off, n int64) (bool, error) {
		for n > 0 {
			m := min(n, step)
			if err := fs.readAt(buf[:m], off); err != nil {
				return true, fmt.Errorf("fat: directory at cluster %d: %w", k, err)
			}
			if done, err := scanEntries(buf[:m], off, &l, fn); done || err != nil {
				return true, err
			}
			off, n = off+m, n-m
		}
		return false, nil
	}
	if k == 0 {
		_, err := read(fs.rootOff, fs.rootBytes)
		return err
	}
	for _, r := range runs {
		if done, err := read(fs.clusterOff(r.start), int64(r.n)*fs.clusterSize); done || err != nil {
			return err
		}
	}
	return nil
}

// dir returns a directory's parse, from the cache or by reading it.
func (fs *FS) dir(k dirKey) (*dirInfo, error) {
	if d, ok := fs.dirs.Get(k); ok {
		return d, nil
	}
	runs, size, err := fs.dirRuns(k)
	if err != nil {
		return nil, err
	}
	d := &dirInfo{runs: runs, bytes: size, index: map[string]int32{}}
	cost := 64 + len(runs)*12
	keep := true
	err = fs.scan(k, runs, func(e *dentry) error {
		if e.attr&attrDir != 0 {
			d.nsub++
		}
		if !keep {
			return nil
		}
		cost += 96 + 3*(len(e.name)+len(e.short))
		if cost > dirCacheBytes/4 {
			keep, d.ents, d.index = false, nil, nil
			return nil
		}
		d.ents = append(d.ents, *e)
		i := int32(len(d.ents) - 1)
		for _, n := range []string{e.name, e.short} {
			if _, dup := d.index[foldKey(n)]; !dup {
				d.index[foldKey(n)] = i
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !keep {
		cost = 64 + len(runs)*12
	}
	fs.dirs.Put(k, d, cost)
	return d, nil
}

// rootLabel finds the volume-label entry of the root directory, as blkid
// does: the first entry with the volume attribute (and not the directory
// one) that is not a long-name slot, deleted, or pointing at a cluster.
func (fs *FS) rootLabel() (string, error) {
	k := dirKey(0)
	if fs.bits == 32 {
		k = dirKey(fs.rootCluster)
	}
	runs, _, err := fs.dirRuns(k)
	if err != nil {
		return "", err
	}
	var label string
	visit := func(e []byte) bool {
		if e[0] == 0 {
			return true
		}
		if e[0] == 0xE5 || e[11]&0x3F == attrLFN || binary.LittleEndian.Uint16(e[20:]) != 0 || binary.LittleEndian.Uint16(e[26:]) != 0 {
			return false
		}
		if e[11]&(attrVolume|attrDir) == attrVolume {
			var n [11]byte
			copy(n[:], e[:11])
			if n[0] == 0x05 {
				n[0] = 0xE5
			}
			label = trimLabel(n[:])
			return true
		}
		return false
	}
	buf := make([]byte, entrySize)
	// The label is near the start; a bounded number of entries is read.
	limit := 4096
	try := func(off, n int64) (bool, error) {
		for ; n >= entrySize && limit > 0; off, n, limit = off+entrySize, n-entrySize, limit-1 {
			if err := fs.readAt(buf, off); err != nil {
				return true, err
			}
			if visit(buf) {
				return true, nil
			}
		}
		return limit == 0, nil
	}
	if k == 0 {
		_, err = try(fs.rootOff, fs.rootBytes)
		return label, err
	}
	for _, r := range runs {
		if done, err := try(fs.clusterOff(r.start), int64(r.n)*fs.clusterSize); done || err != nil {
			return label, err
		}
	}
	return label, nil
}

// entryAt reads the 8.3 entry that inode number ino names, checking that
// ino is an entry's place in the root directory or the data area.
func (fs *FS) entryAt(ino uint64) ([]byte, error) {
	pos := int64(ino)
	inRoot := fs.bits != 32 && pos >= fs.rootOff && pos < fs.rootOff+fs.rootBytes
	inData := pos >= fs.dataOff && pos < fs.dataOff+int64(fs.clusters)*fs.clusterSize
	if ino > 1<<62 || pos%entrySize != 0 || !inRoot && !inData {
		return nil, fmt.Errorf("fat: inode %d: %w", ino, guestfs.ErrNotExist)
	}
	e := make([]byte, entrySize)
	if err := fs.readAt(e, pos); err != nil {
		return nil, fmt.Errorf("fat: inode %d: %w", ino, err)
	}
	if e[0] == 0 || e[0] == 0xE5 || e[11]&0x3F == attrLFN || e[11]&attrVolume != 0 {
		return nil, fmt.Errorf("fat: inode %d: no file entry there: %w", ino, guestfs.ErrNotExist)
	}
	return e, nil
}

// firstCluster is an entry's first cluster; the high half exists on FAT32
// only (FAT12/16 kept OS/2 extended attributes there).
func (fs *FS) firstCluster(e []byte) uint32 {
	c := uint32(binary.LittleEndian.Uint16(e[26:]))
	if fs.bits == 32 {
		c |= uint32(binary.LittleEndian.Uint16(e[20:])) << 16
	}
	return c
}
