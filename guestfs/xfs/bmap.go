package xfs

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/ovfmount/ovfmount/guestfs"
)

// extent maps len file blocks from file block off to linear volume block
// blk; an unwritten (preallocated) extent reads as zeros.
type extent struct {
	off, blk, len uint64
	unwritten     bool
}

const (
	bmapMagicV4 = 0x424d4150 // "BMAP"
	bmapMagicV5 = 0x424d4133 // "BMA3"
	nullFSB     = math.MaxUint64
	// maxBmbtLevels bounds a btree's height: XFS's own limit is below
	// this for any block size; a taller root is corrupt.
	maxBmbtLevels = 14
)

// decodeRec unpacks a 128-bit bmbt record: flag (1 bit), file offset (54),
// start block (52), length (21).
func decodeRec(b []byte) (off, fsb, n uint64, unwritten bool) {
	l0 := binary.BigEndian.Uint64(b)
	l1 := binary.BigEndian.Uint64(b[8:])
	unwritten = l0>>63 != 0
	off = (l0 & (1<<63 - 1)) >> 9
	fsb = (l0&0x1ff)<<43 | l1>>21
	n = l1 & (1<<21 - 1)
	return
}

// recExtent decodes a record and checks it against the volume, and that
// it starts at or after min (records are sorted and do not overlap).
func (f *FS) recExtent(b []byte, min uint64) (extent, error) {
	off, fsb, n, unw := decodeRec(b)
	if n == 0 || off < min {
		return extent{}, fmt.Errorf("extent at file block %d of %d blocks (after %d)", off, n, min)
	}
	lin, ok := f.fsbToLinear(fsb, n)
	if !ok {
		return extent{}, fmt.Errorf("extent at block %#x+%d outside the volume", fsb, n)
	}
	return extent{off: off, blk: lin, len: n, unwritten: unw}, nil
}

// forkExtents decodes an extents-format fork.
func (f *FS) forkExtents(ip *inode, fork []byte, n uint64, which string) ([]extent, error) {
	if n > uint64(len(fork)/16) {
		return nil, fmt.Errorf("xfs: inode %d: %d %s extents in a %d-byte fork: %w", ip.ino, n, which, len(fork), guestfs.ErrCorrupt)
	}
	out := make([]extent, 0, n)
	next := uint64(0)
	for i := uint64(0); i < n; i++ {
		e, err := f.recExtent(fork[i*16:], next)
		if err != nil {
			return nil, fmt.Errorf("xfs: inode %d: %s fork: %v: %w", ip.ino, which, err, guestfs.ErrCorrupt)
		}
		out = append(out, e)
		next = e.off + e.len
	}
	return out, nil
}

// forkOf returns an inode's data fork (attr false) or attribute fork.
func forkOf(ip *inode, attr bool) (format uint8, raw []byte, exts []extent) {
	if attr {
		return ip.aformat, ip.afork, ip.aext
	}
	return ip.format, ip.dfork, ip.dext
}

// mapBlock finds the extent holding file block lblk of a fork. When lblk
// is in a hole it returns ok false and next, the first mapped block after
// it (MaxUint64: none). Btree forks are searched from the root, one block
// per level (the blocks are cached), so that a file of a million extents
// needs no list of them in memory.
func (f *FS) mapBlock(ip *inode, attr bool, lblk uint64) (e extent, ok bool, next uint64, err error) {
	format, raw, exts := forkOf(ip, attr)
	switch format {
	case fmtExtents:
		i := sort.Search(len(exts), func(i int) bool { return exts[i].off+exts[i].len > lblk })
		if i == len(exts) {
			return extent{}, false, math.MaxUint64, nil
		}
		if exts[i].off <= lblk {
			return exts[i], true, 0, nil
		}
		return extent{}, false, exts[i].off, nil
	case fmtBtree:
		return f.bmbtLookup(ip, attr, raw, lblk)
	}
	return extent{}, false, 0, fmt.Errorf("xfs: inode %d: fork format %d has no block map: %w", ip.ino, format, guestfs.ErrCorrupt)
}

// bmbtLookup descends a bmbt from the root in the inode's fork.
func (f *FS) bmbtLookup(ip *inode, attr bool, root []byte, lblk uint64) (extent, bool, uint64, error) {
	be := binary.BigEndian
	what := "data"
	if attr {
		what = "attribute"
	}
	level := int(be.Uint16(root))
	nrecs := int(be.Uint16(root[2:]))
	maxr := (len(root) - 4) / 16
	if level < 1 || level > maxBmbtLevels || nrecs < 1 || nrecs > maxr {
		return extent{}, false, 0, fmt.Errorf("xfs: inode %d: %s bmbt root of level %d with %d records: %w", ip.ino, what, level, nrecs, guestfs.ErrCorrupt)
	}
	keys, ptrs := root[4:], root[4+maxr*8:]
	for {
		// The last key at or before lblk names the child that holds it.
		i := sort.Search(nrecs, func(i int) bool { return be.Uint64(keys[i*8:]) > lblk }) - 1
		if i < 0 {
			i = 0
		}
		blk, err := f.bmbtBlock(ip, what, be.Uint64(ptrs[i*8:]), level-1)
		if err != nil {
			return extent{}, false, 0, err
		}
		level--
		hdr := f.bmbtHdrLen()
		nrecs = int(be.Uint16(blk[6:]))
		if level > 0 {
			maxr = (len(blk) - hdr) / 16
			keys, ptrs = blk[hdr:], blk[hdr+maxr*8:]
			continue
		}
		recs := blk[hdr:]
		j := sort.Search(nrecs, func(j int) bool {
			off, _, n, _ := decodeRec(recs[j*16:])
			return off+n > lblk
		})
		if j < nrecs {
			e, err := f.recExtent(recs[j*16:], 0)
			if err != nil {
				return extent{}, false, 0, fmt.Errorf("xfs: inode %d: %s bmbt: %v: %w", ip.ino, what, err, guestfs.ErrCorrupt)
			}
			if e.off <= lblk {
				return e, true, 0, nil
			}
			return extent{}, false, e.off, nil
		}
		// Past this leaf's last record: the hole ends where the right
		// sibling's first record starts.
		right := be.Uint64(blk[16:])
		if right == nullFSB {
			return extent{}, false, math.MaxUint64, nil
		}
		sib, err := f.bmbtBlock(ip, what, right, 0)
		if err != nil {
			return extent{}, false, 0, err
		}
		off, _, _, _ := decodeRec(sib[hdr:])
		if off <= lblk {
			return extent{}, false, 0, fmt.Errorf("xfs: inode %d: %s bmbt leaves out of order: %w", ip.ino, what, guestfs.ErrCorrupt)
		}
		return extent{}, false, off, nil
	}
}

func (f *FS) bmbtHdrLen() int {
	if f.sb.v5 {
		return 72
	}
	return 24
}

// bmbtBlock reads a non-root bmbt block and checks its header: the magic,
// the level its parent expects (levels strictly fall, so a descent cannot
// loop), a record count that fits, and on v5 the CRC and owner. Leaves
// also have their records checked for order and range, once.
func (f *FS) bmbtBlock(ip *inode, what string, fsb uint64, level int) ([]byte, error) {
	lin, ok := f.fsbToLinear(fsb, 1)
	if !ok {
		return nil, fmt.Errorf("xfs: inode %d: %s bmbt pointer %#x outside the volume: %w", ip.ino, what, fsb, guestfs.ErrCorrupt)
	}
	c, err := f.block(lin)
	if err != nil {
		return nil, err
	}
	b := c.data
	be := binary.BigEndian
	bad := func(why string) ([]byte, error) {
		return nil, fmt.Errorf("xfs: inode %d: %s bmbt block %d (level %d): %s: %w", ip.ino, what, lin, level, why, guestfs.ErrCorrupt)
	}
	if int(be.Uint16(b[4:])) != level {
		return bad(fmt.Sprintf("records level %d", be.Uint16(b[4:])))
	}
	if c.checked.Load() == kindBmbt {
		return b, nil
	}
	hdr := f.bmbtHdrLen()
	magic := uint32(bmapMagicV4)
	if f.sb.v5 {
		magic = bmapMagicV5
	}
	if be.Uint32(b) != magic {
		return bad("bad magic")
	}
	n := int(be.Uint16(b[6:]))
	if n < 1 || n > (len(b)-hdr)/16 {
		return bad(fmt.Sprintf("%d records", n))
	}
	if f.sb.v5 {
		if f.verify && !crcOK(b, 64) {
			return bad("CRC mismatch")
		}
		if be.Uint64(b[24:]) != f.daddr(lin) || be.Uint64(b[56:]) != ip.ino {
			return bad("header names another block or owner")
		}
	}
	if level == 0 {
		next := uint64(0)
		for i := 0; i < n; i++ {
			e, err := f.recExtent(b[hdr+i*16:], next)
			if err != nil {
				return bad(err.Error())
			}
			next = e.off + e.len
		}
	}
	c.checked.Store(kindBmbt)
	return b, nil
}
