package ext4

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// runKind is what a run of a file's logical blocks holds.
type runKind uint8

const (
	runData      runKind = iota
	runHole              // nothing allocated: reads as zeros
	runUnwritten         // allocated but uninitialized: reads as zeros
)

const (
	extentMagic    = 0xF30A
	extentMaxDepth = 5 // the kernel's EXT4_MAX_EXTENT_DEPTH
	maxLogical     = 1 << 32
)

// mapBlocks maps logical block lb of a file to a run of at most max
// blocks of one kind: for data, blocks physically contiguous from phys, so
// that a read of the run is one read of the volume.
func (fs *FS) mapBlocks(in *inode, lb, max uint64) (phys, n uint64, kind runKind, err error) {
	if max == 0 {
		max = 1
	}
	if in.flags&inodeExtents != 0 {
		phys, n, kind, err = fs.mapExtent(in, lb)
	} else {
		phys, n, kind, err = fs.mapIndirect(in, lb)
	}
	if err != nil {
		return 0, 0, 0, err
	}
	if n > max {
		n = max
	}
	return phys, n, kind, nil
}

// mapExtent walks the extent tree from the root in the inode down to the
// leaf covering lb. Each level's header is checked (magic, entry counts
// within the node, depth exactly one less than its parent's), so a tree
// whose index points back at itself ends at the depth limit: a descent
// takes at most extentMaxDepth block reads.
func (fs *FS) mapExtent(in *inode, lb uint64) (uint64, uint64, runKind, error) {
	le := binary.LittleEndian
	if lb >= maxLogical {
		return 0, 1 << 62, runHole, nil
	}
	node := in.block[:]
	end := uint64(maxLogical) // the current subtree covers blocks below end
	wantDepth := -1
	for level := 0; ; level++ {
		if len(node) < 12 || le.Uint16(node) != extentMagic {
			return 0, 0, 0, fmt.Errorf("ext4: inode %d: extent node at level %d: bad magic: %w", in.ino, level, guestfs.ErrCorrupt)
		}
		entries, maxEntries, depth := int(le.Uint16(node[2:])), int(le.Uint16(node[4:])), int(le.Uint16(node[6:]))
		if maxEntries > (len(node)-12)/12 || entries > maxEntries {
			return 0, 0, 0, fmt.Errorf("ext4: inode %d: extent node at level %d: %d of %d entries: %w", in.ino, level, entries, maxEntries, guestfs.ErrCorrupt)
		}
		if (wantDepth >= 0 && depth != wantDepth) || depth > extentMaxDepth {
			return 0, 0, 0, fmt.Errorf("ext4: inode %d: extent node at level %d has depth %d: %w", in.ino, level, depth, guestfs.ErrCorrupt)
		}
		first := func(i int) uint64 { return uint64(le.Uint32(node[12+12*i:])) }
		// i: the last entry starting at or before lb (-1: none).
		lo, hi := 0, entries
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if first(m) <= lb {
				lo = m + 1
			} else {
				hi = m
			}
		}
		i := lo - 1
		next := end
		if i+1 < entries && first(i+1) < next {
			next = first(i + 1)
		}
		holeTo := func(to uint64) (uint64, uint64, runKind, error) {
			if to <= lb {
				to = lb + 1
			}
			return 0, to - lb, runHole, nil
		}
		if i < 0 {
			return holeTo(next)
		}
		e := node[12+12*i:]
		if depth == 0 {
			start, l := first(i), uint64(le.Uint16(e[4:]))
			kind := runData
			if l > 32768 {
				kind, l = runUnwritten, l-32768
			}
			if l == 0 {
				return 0, 0, 0, fmt.Errorf("ext4: inode %d: empty extent at block %d: %w", in.ino, start, guestfs.ErrCorrupt)
			}
			if lb >= start+l {
				return holeTo(next)
			}
			p := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if !fs.validRun(p, l) {
				return 0, 0, 0, fmt.Errorf("ext4: inode %d: extent of %d blocks at block %d outside the volume: %w", in.ino, l, p, guestfs.ErrCorrupt)
			}
			return p + (lb - start), start + l - lb, kind, nil
		}
		end = next
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		cb, err := fs.block(child)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("ext4: inode %d: extent index: %w", in.ino, err)
		}
		if err := fs.verifyExtentBlock(in, child, cb); err != nil {
			return 0, 0, 0, err
		}
		node = cb.data
		wantDepth = depth - 1
	}
}

// verifyExtentBlock checks an extent tree block's crc32c tail, which
// follows its last possible entry, once per owning inode.
func (fs *FS) verifyExtentBlock(in *inode, phys uint64, cb *cachedBlock) error {
	if !fs.sb.hasMetadataCsum || cb.verified.Load() == uint64(in.ino) {
		return nil
	}
	d := cb.data
	maxEntries := int(binary.LittleEndian.Uint16(d[4:]))
	off := 12 + 12*maxEntries
	if off+4 > len(d) || crc32c(in.seed, d[:off]) != binary.LittleEndian.Uint32(d[off:]) {
		return fmt.Errorf("ext4: inode %d: extent block %d: checksum mismatch: %w", in.ino, phys, guestfs.ErrCorrupt)
	}
	cb.verified.Store(uint64(in.ino))
	return nil
}

// mapIndirect maps lb through the ext2/ext3 block map: twelve direct
// pointers, then single, double and triple indirect blocks. A zero pointer
// at any level is a hole as wide as everything below it, so holes of any
// size are passed in one step; the depth is fixed, so no chain loops.
func (fs *FS) mapIndirect(in *inode, lb uint64) (uint64, uint64, runKind, error) {
	le := binary.LittleEndian
	apb := uint64(fs.bs / 4) // addresses per block
	ptr := func(b []byte, i uint64) uint64 { return uint64(le.Uint32(b[4*i:])) }
	// run extends a mapping from pointer i of table b (n pointers) over
	// the following pointers that continue it.
	run := func(b []byte, i, n uint64) (uint64, uint64, runKind, error) {
		p := ptr(b, i)
		k := uint64(1)
		for i+k < n && ((p == 0 && ptr(b, i+k) == 0) || (p != 0 && ptr(b, i+k) == p+k)) {
			k++
		}
		if p == 0 {
			return 0, k, runHole, nil
		}
		if !fs.validRun(p, k) {
			return 0, 0, 0, fmt.Errorf("ext4: inode %d: block %d outside the volume: %w", in.ino, p, guestfs.ErrCorrupt)
		}
		return p, k, runData, nil
	}
	if lb < 12 {
		return run(in.block[:48], lb, 12)
	}
	lb -= 12
	span := apb // blocks covered by one pointer of the inode's slot
	for slot := uint64(12); slot < 15; slot++ {
		if lb >= span {
			lb -= span
			span *= apb
			continue
		}
		p := ptr(in.block[:], slot)
		for span > 1 {
			if p == 0 {
				return 0, span - lb, runHole, nil
			}
			cb, err := fs.block(p)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("ext4: inode %d: indirect block: %w", in.ino, err)
			}
			span /= apb
			i := lb / span
			lb %= span
			if span == 1 {
				return run(cb.data, i, apb)
			}
			p = ptr(cb.data, i)
		}
	}
	// Past what a triple indirect map reaches: nothing can be there.
	return 0, 1 << 62, runHole, nil
}
