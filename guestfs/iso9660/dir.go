package iso9660

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/ovfmount/ovfmount/guestfs"
)

// dirInfo is a parsed directory, kept when it fits the cache.
type dirInfo struct {
	ents  []*node
	index map[string]int32 // lookup key -> ents index
}

var errStop = errors.New("stop")

// scan streams a directory's records in order, calling fn with a node for
// each listed file: not "." and "..", not associated files (hidden by
// Linux unless showassoc), not Rock Ridge RE entries (the relocated
// directory appears where its CL entry stands), not names unusable as
// file names. Records of a multi-extent file become one node.
func (fs *FS) scan(dir *node, fn func(*node) error) error {
	if len(dir.extents) == 0 {
		return nil
	}
	ext := dir.extents[0]
	if ext.off%sectorSize != 0 && fs.blockSize == sectorSize {
		return fmt.Errorf("iso9660: directory at %d: not sector-aligned: %w", ext.off, guestfs.ErrCorrupt)
	}
	// Read up to 64 KiB at a time: most directories are one sector.
	chunk := min(64<<10, (ext.n+sectorSize-1)/sectorSize*sectorSize)
	buf := make([]byte, chunk)
	var pending []record
	for done := int64(0); done < ext.n; {
		n := min(chunk, ext.n-done)
		if err := fs.readAt(buf[:n], ext.off+done); err != nil {
			return fmt.Errorf("iso9660: directory at %d: %w", ext.off, err)
		}
		for s := int64(0); s < n; s += sectorSize {
			sec := buf[s:min(s+sectorSize, n)]
			for o := 0; o < len(sec) && sec[o] != 0; {
				pos := ext.off + done + s + int64(o)
				rb := sec[o:]
				if int(sec[o]) <= len(rb) {
					rb = append([]byte(nil), rb[:sec[o]]...)
				}
				rec, err := parseRecord(rb, pos)
				if err != nil {
					return err
				}
				o += int(sec[o])
				if rec.isDot() || rec.flags&flagAssociated != 0 {
					continue
				}
				if rec.flags&flagMultiExt != 0 {
					if len(pending) >= maxExtents {
						return fmt.Errorf("iso9660: directory at %d: a file of more than %d extents: %w", ext.off, maxExtents, guestfs.ErrCorrupt)
					}
					pending = append(pending, rec)
					continue
				}
				recs := append(pending, rec)
				pending = nil
				nd, err := fs.entryNode(recs)
				if err != nil {
					return err
				}
				if nd == nil {
					continue
				}
				if err := fn(nd); err != nil {
					return err
				}
			}
		}
		done += n
	}
	return nil
}

// entryNode builds the node of a listed entry, or nil when it is not
// listed.
func (fs *FS) entryNode(recs []record) (*node, error) {
	var rr *rock
	if fs.rock {
		var err error
		if rr, err = fs.parseRock(&recs[0]); err != nil {
			return nil, err
		}
		if rr != nil && rr.relocated {
			return nil, nil
		}
	}
	name := fs.displayName(&recs[0], rr)
	if !validName(name) {
		return nil, nil
	}
	return fs.buildNode(recs, name, rr)
}

// lookupKey is how names are matched: exactly with Rock Ridge, else
// ignoring case (Unicode simple folding), as Linux matches Joliet names
// (check=relaxed, its default there) and as plain ISO names, shown in
// lowercase but stored in uppercase, are best matched.
func (fs *FS) lookupKey(name string) string {
	if fs.rock {
		return name
	}
	var sb strings.Builder
	for _, r := range name {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		sb.WriteRune(m)
	}
	return sb.String()
}

// dir returns a directory's parse from the cache, or reads it; a
// directory too large for the cache is returned without entries (nil
// index) and is streamed by its callers.
func (fs *FS) dir(d *node) (*dirInfo, error) {
	key := d.extents[0].off
	if di, ok := fs.dirs.Get(key); ok {
		return di, nil
	}
	di := &dirInfo{index: map[string]int32{}}
	cost, keep := 64, true
	err := fs.scan(d, func(n *node) error {
		fs.rememberSerial(n)
		if !keep {
			return nil
		}
		cost += 160 + 2*len(n.name) + 16*len(n.extents)
		if cost > dirCacheBytes/4 {
			keep, di.ents, di.index = false, nil, nil
			return nil
		}
		di.ents = append(di.ents, n)
		k := fs.lookupKey(n.name)
		if _, dup := di.index[k]; !dup {
			di.index[k] = int32(len(di.ents) - 1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if keep {
		fs.dirs.Put(key, di, cost)
		for _, n := range di.ents {
			fs.nodes.Put(n.ino, n, 160+len(n.name)+16*len(n.extents))
		}
	}
	return di, nil
}

// node finds the node of an inode number: the root, a cached one, or the
// record the number (or the serial's remembered place) points at.
func (fs *FS) node(ino uint64) (*node, error) {
	if ino == fs.root.ino {
		return fs.root, nil
	}
	if n, ok := fs.nodes.Get(ino); ok {
		return n, nil
	}
	pos := int64(ino &^ noSerialTag)
	if fs.serials && ino&noSerialTag == 0 {
		fs.mu.Lock()
		p, ok := fs.serialPos[ino]
		fs.mu.Unlock()
		if !ok {
			var err error
			if p, err = fs.findSerial(ino); err != nil {
				return nil, err
			}
		}
		pos = p
	}
	if ino > 1<<63 || pos < vdStart*sectorSize || pos >= fs.size {
		return nil, fmt.Errorf("iso9660: inode %d: %w", ino, guestfs.ErrNotExist)
	}
	n, err := fs.nodeAt(pos)
	if err != nil {
		return nil, fmt.Errorf("iso9660: inode %d: %w", ino, err)
	}
	if n.ino != ino {
		return nil, fmt.Errorf("iso9660: inode %d: the record there is inode %d: %w", ino, n.ino, guestfs.ErrNotExist)
	}
	fs.nodes.Put(n.ino, n, 160+len(n.name)+16*len(n.extents))
	return n, nil
}

// nodeAt reads the record at pos and, for a multi-extent file, the
// records after it, skipping sector padding.
func (fs *FS) nodeAt(pos int64) (*node, error) {
	rec, err := fs.readRecord(pos)
	if err != nil {
		return nil, err
	}
	recs := []record{rec}
	for rec.flags&flagMultiExt != 0 {
		if len(recs) >= maxExtents {
			return nil, fmt.Errorf("iso9660: record at %d: more than %d extents: %w", pos, maxExtents, guestfs.ErrCorrupt)
		}
		// The next record follows this one, or starts the next sector
		// when the rest of this one is padding.
		p := rec.pos + int64(rec.length)
		if p%sectorSize != 0 {
			b := make([]byte, 1)
			if err := fs.readAt(b, p); err != nil {
				return nil, err
			}
			if b[0] == 0 {
				p = (p + sectorSize - 1) / sectorSize * sectorSize
			}
		}
		if rec, err = fs.readRecord(p); err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if rec := recs[0]; rec.isDot() {
		// A relocated directory's (or the root's) "." record.
		return fs.buildNode(recs, "", nil)
	}
	var rr *rock
	if fs.rock {
		if rr, err = fs.parseRock(&recs[0]); err != nil {
			return nil, err
		}
	}
	return fs.buildNode(recs, fs.displayName(&recs[0], rr), rr)
}

// findSerial walks the tree for a serial number Stat was asked about
// after the serial map forgot it (a volume of more than maxSerials
// files); each directory is read once.
func (fs *FS) findSerial(serial uint64) (int64, error) {
	seen := map[int64]bool{}
	queue := []*node{fs.root}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if len(d.extents) == 0 || seen[d.extents[0].off] {
			continue
		}
		seen[d.extents[0].off] = true
		var found int64 = -1
		err := fs.scan(d, func(n *node) error {
			if n.ino == serial {
				found = n.pos
				return errStop
			}
			if n.isDir() {
				queue = append(queue, n)
			}
			return nil
		})
		if found >= 0 {
			return found, nil
		}
		if err != nil && err != errStop {
			continue
		}
	}
	return 0, fmt.Errorf("iso9660: inode %d: %w", serial, guestfs.ErrNotExist)
}

func (n *node) isDir() bool { return n.typ() == guestfs.TypeDir }

// typ is the file type: Rock Ridge's PX mode when it names a type, else
// the directory flag.
func (n *node) typ() uint32 {
	if n.rr != nil && n.rr.px {
		switch t := n.rr.mode & guestfs.TypeMask; t {
		case guestfs.TypeDir, guestfs.TypeRegular, guestfs.TypeSymlink, guestfs.TypeChar, guestfs.TypeBlock, guestfs.TypeFIFO, guestfs.TypeSocket:
			// A directory record is a directory whatever PX says.
			if (t == guestfs.TypeDir) == (n.flags&flagDir != 0) {
				return t
			}
		}
	}
	if n.flags&flagDir != 0 {
		return guestfs.TypeDir
	}
	return guestfs.TypeRegular
}

func (fs *FS) dirNode(ino uint64) (*node, error) {
	n, err := fs.node(ino)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, fmt.Errorf("iso9660: inode %d: %w", ino, guestfs.ErrNotDir)
	}
	return n, nil
}

// ReadDir lists a directory in its on-disk order.
func (fs *FS) ReadDir(ino uint64, fn func(guestfs.DirEntry) error) error {
	d, err := fs.dirNode(ino)
	if err != nil {
		return err
	}
	di, err := fs.dir(d)
	if err != nil {
		return err
	}
	emit := func(n *node) error { return fn(guestfs.DirEntry{Name: n.name, Ino: n.ino, Type: n.typ()}) }
	if di.index != nil {
		for _, n := range di.ents {
			if err := emit(n); err != nil {
				return err
			}
		}
		return nil
	}
	return fs.scan(d, emit)
}

// Lookup finds a name: exactly with Rock Ridge, ignoring case otherwise.
func (fs *FS) Lookup(ino uint64, name string) (guestfs.DirEntry, error) {
	d, err := fs.dirNode(ino)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	di, err := fs.dir(d)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	key := fs.lookupKey(name)
	if di.index != nil {
		if i, ok := di.index[key]; ok {
			n := di.ents[i]
			return guestfs.DirEntry{Name: n.name, Ino: n.ino, Type: n.typ()}, nil
		}
		return guestfs.DirEntry{}, fmt.Errorf("iso9660: %q: %w", name, guestfs.ErrNotExist)
	}
	var found *node
	err = fs.scan(d, func(n *node) error {
		if fs.lookupKey(n.name) == key {
			found = n
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return guestfs.DirEntry{}, err
	}
	if found == nil {
		return guestfs.DirEntry{}, fmt.Errorf("iso9660: %q: %w", name, guestfs.ErrNotExist)
	}
	fs.nodes.Put(found.ino, found, 160+len(found.name)+16*len(found.extents))
	return guestfs.DirEntry{Name: found.name, Ino: found.ino, Type: found.typ()}, nil
}
