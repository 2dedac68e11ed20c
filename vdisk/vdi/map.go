package vdi

import (
	"fmt"
	"math/big"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// entry is block b's block map entry.
func (img *Image) entry(b int64) uint32 { return le.Uint32(img.entries[4*b:]) }

// scan splits the disk into runs that Map answers at once: unallocated
// blocks, zero blocks, blocks stored one after the other in the file, and
// each unreadable block alone. It checks every stored block once, so that
// Open can warn about the unreadable ones, the blocks two entries share,
// and entries past the header's count of allocated blocks.
func (img *Image) scan() {
	n := int64(len(img.entries) / 4)
	// Entries that pass blockData are below this, so the set of seen
	// entries costs at most one bit per block the file can hold.
	limit := (img.size-img.h.offData)/img.stride + 1
	var seen []uint64
	var bad, dup, over, stored int
	var firstBad error
	firstDup := int64(-1)
	prevOK := false
	for b := int64(0); b < n; b++ {
		e := img.entry(b)
		ok := false
		if e != blockFree && e != blockZero {
			stored++
			if _, err := img.blockData(b, e); err != nil {
				if bad == 0 {
					firstBad = err
				}
				bad++
			} else {
				ok = true
				if seen == nil {
					seen = make([]uint64, (limit+63)/64)
				}
				if seen[e/64]&(1<<(e%64)) != 0 {
					if dup == 0 {
						firstDup = b
					}
					dup++
				}
				seen[e/64] |= 1 << (e % 64)
				if e >= img.h.allocated {
					over++
				}
			}
		}
		if b == 0 || !img.continues(b, e, ok, prevOK) {
			img.runs = append(img.runs, uint32(b))
		}
		prevOK = ok
	}
	if bad > 0 {
		img.warnings = append(img.warnings, fmt.Sprintf("vdi: %d of %d allocated blocks cannot be read; the first: %v", bad, stored, firstBad))
	}
	if dup > 0 {
		// Both VirtualBox and qemu read such blocks (qemu-img check calls
		// it corruption); so does this package, but one of them at least
		// holds another block's data.
		img.warnings = append(img.warnings, fmt.Sprintf("vdi: %d blocks share their stored block with an earlier one (the first: block %d, entry %d); their data is suspect",
			dup, firstDup, img.entry(firstDup)))
	}
	if over > 0 {
		img.warnings = append(img.warnings, fmt.Sprintf("vdi: %d blocks are stored past the header's count of %d allocated blocks", over, img.h.allocated))
	}
}

// continues reports whether block b (entry e, readable if ok) belongs to
// the run of block b-1.
func (img *Image) continues(b int64, e uint32, ok, prevOK bool) bool {
	p := img.entry(b - 1)
	switch {
	case e == blockFree || e == blockZero:
		return p == e
	case !ok || !prevOK || p == blockFree || p == blockZero:
		return false
	}
	// Stored blocks are one run only where their data is contiguous: the
	// next entry, and no extra data in between.
	return e == p+1 && img.h.blockExtra == 0
}

// blockData returns where the data of block b (entry e) starts, after
// checking that the part of it the disk covers lies in the image: at
// offData + e*(blockSize+blockExtra), after the block's extra data, as
// VirtualBox reads it. (qemu reads only images without extra data.)
func (img *Image) blockData(b int64, e uint32) (int64, error) {
	need := min(img.blockSize, img.vsize-b*img.blockSize)
	// offData <= size was not checked: a short file fails here.
	room := img.size - img.h.offData - int64(img.h.blockExtra) - need
	if room < 0 || int64(e) > room/img.stride {
		// The offset may not fit in an int64: 2^32 blocks of 4 GiB.
		at := new(big.Int).Mul(big.NewInt(int64(e)), big.NewInt(img.stride))
		at.Add(at, big.NewInt(img.h.offData+int64(img.h.blockExtra)))
		return 0, fmt.Errorf("block map entry %d (stored block %d) puts the block's data at %s, past the end of the image (%d bytes): %w",
			b, e, at, img.size, blockmap.ErrCorrupt)
	}
	return img.h.offData + int64(e)*img.stride + int64(img.h.blockExtra), nil
}

// Map returns the run holding virtual byte off: a run of unallocated or
// zero blocks, or of blocks stored contiguously.
func (img *Image) Map(off int64) (blockmap.Run, error) {
	if off < 0 || off >= img.vsize {
		return blockmap.Run{}, fmt.Errorf("vdi: %s: offset %d is outside the disk (%d bytes)", img.name, off, img.vsize)
	}
	b := off >> img.shift
	i := img.runAt(uint32(b))
	first := int64(img.runs[i])
	end := img.vsize
	if i+1 < len(img.runs) {
		end = min(int64(img.runs[i+1])<<img.shift, img.vsize)
	}
	start := first << img.shift
	r := blockmap.Run{Off: start, Len: end - start}
	switch e := img.entry(first); e {
	case blockFree:
		// In a base image, VirtualBox and qemu read it as zeros; in a
		// differencing image, it is the parent's.
		r.Kind = blockmap.Hole
	case blockZero:
		r.Kind = blockmap.Zero
	default:
		data, err := img.blockData(first, e)
		if err != nil {
			return blockmap.Run{}, fmt.Errorf("vdi: %s: reading offset %d: %w", img.name, off, err)
		}
		r.Kind, r.Src, r.Phys = blockmap.Stored, img.r, data
	}
	return r, nil
}

// runAt finds the run holding block b: the last run starting at or
// before it.
func (img *Image) runAt(b uint32) int {
	lo, hi := 0, len(img.runs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if img.runs[m] <= b {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}
