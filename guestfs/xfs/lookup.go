package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

// daHash is XFS's name hash (xfs_da_hashname): the key of directory and
// attribute B+trees. Seven bits per byte, rotated in groups of four.
func daHash(name []byte) uint32 {
	var h uint32
	for ; len(name) >= 4; name = name[4:] {
		h = uint32(name[0])<<21 ^ uint32(name[1])<<14 ^ uint32(name[2])<<7 ^ uint32(name[3]) ^ bits.RotateLeft32(h, 7*4)
	}
	switch len(name) {
	case 3:
		return uint32(name[0])<<14 ^ uint32(name[1])<<7 ^ uint32(name[2]) ^ bits.RotateLeft32(h, 7*3)
	case 2:
		return uint32(name[0])<<7 ^ uint32(name[1]) ^ bits.RotateLeft32(h, 7*2)
	case 1:
		return uint32(name[0]) ^ bits.RotateLeft32(h, 7)
	}
	return h
}

// maxDaDepth bounds a directory or attribute B+tree's height (XFS's
// limit is 5).
const maxDaDepth = 5

// Lookup finds a name in a directory through its hash index: the index at
// the end of a single-block directory, the leaf block of a leaf directory,
// or the dabtree of a node or B+tree directory; a short-form directory
// (in the inode, a few dozen names at most) has no index and is scanned.
func (f *FS) Lookup(dir uint64, name string) (guestfs.DirEntry, error) {
	ip, err := f.dirInode(dir)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	notExist := func() error { return fmt.Errorf("xfs: directory %d: %q: %w", dir, name, guestfs.ErrNotExist) }
	if name == "" || len(name) > 255 || strings.IndexByte(name, '/') >= 0 {
		return guestfs.DirEntry{}, notExist()
	}
	if name == "." {
		return guestfs.DirEntry{Name: name, Ino: dir, Type: guestfs.TypeDir}, nil
	}
	want := []byte(name)
	var found guestfs.DirEntry
	hit := false
	match := func(n []byte, ino uint64, ft uint8) bool {
		if bytes.Equal(n, want) {
			found, hit = guestfs.DirEntry{Name: name, Ino: ino, Type: entryType(ft)}, true
		}
		return hit
	}
	if ip.format == fmtLocal {
		parent, err := f.sfEntries(ip, func(n []byte, ino uint64, ft uint8) (bool, error) {
			return match(n, ino, ft), nil
		})
		if err != nil {
			return guestfs.DirEntry{}, err
		}
		if name == ".." {
			return guestfs.DirEntry{Name: name, Ino: parent, Type: guestfs.TypeDir}, nil
		}
		if !hit {
			return guestfs.DirEntry{}, notExist()
		}
		return found, nil
	}
	if err := f.hashLookup(ip, want, daHash(want), match); err != nil {
		return guestfs.DirEntry{}, err
	}
	if !hit {
		return guestfs.DirEntry{}, notExist()
	}
	return found, nil
}

// hashLookup finds the candidates for a hash in the directory's index and
// checks each against the data entry it points to.
func (f *FS) hashLookup(ip *inode, want []byte, h uint32, match func([]byte, uint64, uint8) bool) error {
	fsbs := f.sb.dirBlkFSBs()
	_, ok, _, err := f.mapBlock(ip, false, 0)
	if err != nil {
		return err
	}
	if !ok {
		return corruptf("directory %d: no first block", ip.ino)
	}
	b0, err := f.forkBlock(ip, false, 0, fsbs)
	if err != nil {
		return err
	}
	if m := binary.BigEndian.Uint32(b0); m == dirBlockMagicV4 || m == dirBlockMagicV5 {
		// A single-block directory: the index sits before the tail.
		end, err := f.dataEnd(ip, b0)
		if err != nil {
			return err
		}
		ents := b0[end : len(b0)-8]
		_, err = f.scanLeafEnts(ip, ents, h, b0, match)
		return err
	}
	// Leaf and node directories: the index starts at the leaf offset.
	_, ok, _, err = f.mapBlock(ip, false, f.leafFirstDB())
	if err != nil {
		return err
	}
	if !ok {
		// Leaf and node directories always have an index: scanning
		// instead would make every lookup of a damaged one cost a
		// whole directory.
		return corruptf("directory %d: no hash index", ip.ino)
	}
	lblk := f.leafFirstDB()
	for depth := 0; ; depth++ {
		b, err := f.forkBlock(ip, false, lblk, fsbs)
		if err != nil {
			return err
		}
		magic := binary.BigEndian.Uint16(b[8:])
		switch {
		case f.isMagic16(magic, daNodeMagicV4, daNodeMagicV5):
			if depth >= maxDaDepth {
				return corruptf("directory %d: dabtree deeper than %d", ip.ino, maxDaDepth)
			}
			child, ok, err := f.daNodeChild(ip, b, h, depth)
			if err != nil || !ok {
				return err
			}
			lblk = child
		case f.isMagic16(magic, leaf1MagicV4, leaf1MagicV5), f.isMagic16(magic, leafNMagicV4, leafNMagicV5):
			return f.scanLeafChain(ip, b, lblk, h, match)
		default:
			return corruptf("directory %d: index block %d magic %#x", ip.ino, lblk, magic)
		}
	}
}

func (f *FS) isMagic16(m uint16, v4, v5 uint16) bool {
	if f.sb.v5 {
		return m == v5
	}
	return m == v4
}

// daHdrLen is the length of a dabtree node's or a directory leaf's header.
func (f *FS) daHdrLen() int {
	if f.sb.v5 {
		return 64
	}
	return 16
}

// daNodeChild picks, in a dabtree node, the first child whose greatest
// hash is at or above h: the leftmost leaf that can hold h. ok is false
// when h is above every hash.
func (f *FS) daNodeChild(ip *inode, b []byte, h uint32, depth int) (uint64, bool, error) {
	hdr := f.daHdrLen()
	off := 12
	if f.sb.v5 {
		off = 56
	}
	count := int(binary.BigEndian.Uint16(b[off:]))
	level := int(binary.BigEndian.Uint16(b[off+2:]))
	if count == 0 || count > (len(b)-hdr)/8 || level < 1 || level > maxDaDepth-depth {
		return 0, false, corruptf("inode %d: dabtree node with %d entries at level %d", ip.ino, count, level)
	}
	ents := b[hdr:]
	i := sort.Search(count, func(i int) bool { return binary.BigEndian.Uint32(ents[i*8:]) >= h })
	if i == count {
		return 0, false, nil
	}
	return uint64(binary.BigEndian.Uint32(ents[i*8+4:])), true, nil
}

// scanLeafChain checks a leaf block's candidates for h, then the right
// siblings' while the run of equal hashes goes on past a leaf's end.
func (f *FS) scanLeafChain(ip *inode, b []byte, lblk uint64, h uint32, match func([]byte, uint64, uint8) bool) error {
	seen := map[uint64]bool{}
	for {
		seen[lblk] = true
		off := 12
		if f.sb.v5 {
			off = 56
		}
		count := int(binary.BigEndian.Uint16(b[off:]))
		hdr := f.daHdrLen()
		if count > (len(b)-hdr)/8 {
			return corruptf("directory %d: leaf block %d with %d entries", ip.ino, lblk, count)
		}
		more, err := f.scanLeafEnts(ip, b[hdr:hdr+count*8], h, nil, match)
		if err != nil || !more {
			return err
		}
		fwd := uint64(binary.BigEndian.Uint32(b[0:]))
		if fwd == 0 || seen[fwd] || len(seen) > 1<<16 {
			return nil
		}
		lblk = fwd
		if b, err = f.forkBlock(ip, false, lblk, f.sb.dirBlkFSBs()); err != nil {
			return err
		}
		if m := binary.BigEndian.Uint16(b[8:]); !f.isMagic16(m, leafNMagicV4, leafNMagicV5) {
			return corruptf("directory %d: leaf sibling %d magic %#x", ip.ino, lblk, m)
		}
	}
}

// scanLeafEnts binary-searches hash-sorted leaf entries (hash, address in
// 8-byte units) for h and checks each candidate's data entry: in block
// (a single-block directory) or in the data block the address names. more
// reports that the run of h reached the end of ents.
func (f *FS) scanLeafEnts(ip *inode, ents []byte, h uint32, block []byte, match func([]byte, uint64, uint8) bool) (more bool, err error) {
	n := len(ents) / 8
	i := sort.Search(n, func(i int) bool { return binary.BigEndian.Uint32(ents[i*8:]) >= h })
	for ; i < n && binary.BigEndian.Uint32(ents[i*8:]) == h; i++ {
		addr := uint64(binary.BigEndian.Uint32(ents[i*8+4:])) * 8
		if addr == 0 {
			continue // a stale entry
		}
		b := block
		dbs := uint64(f.sb.dirBlkSize())
		if b == nil {
			if addr >= dirLeafOffset {
				return false, corruptf("directory %d: leaf address %#x", ip.ino, addr)
			}
			db := addr / dbs * f.sb.dirBlkFSBs()
			if b, err = f.forkBlock(ip, false, db, f.sb.dirBlkFSBs()); err != nil {
				return false, err
			}
			end, err := f.dataEnd(ip, b)
			if err != nil {
				return false, err
			}
			b = b[:end]
		}
		if addr%dbs < uint64(f.dataHdrLen()) || addr >= dbs && block != nil {
			return false, corruptf("directory %d: leaf address %#x", ip.ino, addr)
		}
		name, ino, ft, _, err := f.dataEntryAt(ip, b, int(addr%dbs))
		if err != nil {
			return false, err
		}
		if match(name, ino, ft) {
			return false, nil
		}
	}
	return i == n, nil
}
