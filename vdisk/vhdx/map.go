package vhdx

import (
	"fmt"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// maxRunBlocks bounds how many BAT entries one Map call scans to extend a
// run, so that small reads inside a huge hole stay cheap.
const maxRunBlocks = 1024

// Map returns the run holding virtual byte off. Runs extend over
// neighbouring blocks in the same state (and, for present blocks, stored
// back to back), which a fixed disk turns into one run per 1024 blocks.
func (img *Image) Map(off int64) (blockmap.Run, error) {
	if off < 0 || off >= img.size {
		return blockmap.Run{}, fmt.Errorf("vhdx: %s: offset %d is outside the %d-byte disk", img.name, off, img.size)
	}
	blk := off / img.blockSize
	idx := img.batIndex(blk)
	page, base, err := img.bat.page(idx)
	if err != nil {
		return blockmap.Run{}, err
	}
	e := page[idx-base]
	kind, err := img.kind(blk, idx, e)
	if err != nil {
		return blockmap.Run{}, err
	}
	if kind == partial {
		return img.mapPartial(blk, e, off)
	}

	// Extend the run over the following blocks of the same page.
	last := blk
	for b := blk + 1; b < img.blocks && b-blk < maxRunBlocks; b++ {
		j := img.batIndex(b) - base
		if j >= int64(len(page)) {
			break
		}
		n := page[j]
		if k, err := img.kind(b, j+base, n); err != nil || k != kind {
			break
		}
		if kind == blockmap.Stored && n>>20 != (e>>20)+uint64(b-blk)*uint64(img.blockSize>>20) {
			break
		}
		last = b
	}
	vs := blk * img.blockSize
	ve := min((last+1)*img.blockSize, img.size)
	if kind != blockmap.Stored {
		return blockmap.Run{Off: vs, Len: ve - vs, Kind: kind}, nil
	}
	return img.fileRun(vs, ve, int64(e>>20)<<20, off), nil
}

// batIndex is the BAT entry of payload block b: a sector bitmap entry
// follows every chunkRatio payload entries.
func (img *Image) batIndex(b int64) int64 { return b + b/img.chunkRatio }

// partial is the kind of a PARTIALLY_PRESENT block of a child, which Map
// resolves sector by sector; it never leaves the package.
const partial blockmap.Kind = 255

// kind classifies a payload block's BAT entry as qemu reads it: every
// state without data reads as zeros, and only ZERO is an explicit zero.
//
// A child ([MS-VHDX] 2.5.1.1) reads through to its parent only where a
// block is NOT_PRESENT (a Hole here). UNDEFINED and UNMAPPED blocks are
// the child's own, with contents the specification leaves to the reader
// among "zeros" and stale data; zeros is the one answer every choice
// allows, so they are Zero, never the parent's bytes. ZERO is Zero, as it
// MUST be; PARTIALLY_PRESENT is resolved by the sector bitmap.
func (img *Image) kind(blk, idx int64, e uint64) (blockmap.Kind, error) {
	if img.child {
		switch e & batStateMask {
		case blockNotPresent:
			return blockmap.Hole, nil
		case blockUndefined, blockUnmapped, blockUnmappedV095, blockZero:
			return blockmap.Zero, nil
		case blockPartiallyPresent:
			return partial, nil
		}
	}
	switch e & batStateMask {
	case blockNotPresent, blockUndefined, blockUnmapped, blockUnmappedV095:
		return blockmap.Hole, nil
	case blockZero:
		return blockmap.Zero, nil
	case blockFullyPresent:
		return blockmap.Stored, nil
	case blockPartiallyPresent:
		return 0, corrupt(img.name, "block %d (BAT entry %d) is PARTIALLY_PRESENT, a state only differencing disks use", blk, idx)
	}
	return 0, corrupt(img.name, "block %d (BAT entry %d) has the undefined state %d", blk, idx, e&batStateMask)
}

// fileRun maps the virtual range [vs, ve), stored contiguously from file
// offset p, to the run holding off. The range is cut where the log replay
// overlays the file, so a Stored run never reads a sector the log
// replaced, and where the member ends, past which a file the log grew
// reads as zeros.
func (img *Image) fileRun(vs, ve, p, off int64) blockmap.Run {
	v := img.view
	fp := p + (off - vs)
	lo, hi := p, p+(ve-vs)
	if ext := v.ov.ext; len(ext) > 0 {
		i := v.ov.search(fp)
		if i < len(ext) && ext[i].off <= fp {
			x := ext[i]
			lo, hi = max(lo, x.off), min(hi, x.end)
			run := blockmap.Run{Off: vs + (lo - p), Len: hi - lo, Kind: blockmap.Zero}
			if x.data != nil {
				run.Kind, run.Src, run.Phys = blockmap.Stored, x.src, lo-x.off
			}
			return run
		}
		if i < len(ext) {
			hi = min(hi, ext[i].off)
		}
		if i > 0 {
			lo = max(lo, ext[i-1].end)
		}
	}
	if fp >= v.size {
		lo = max(lo, v.size)
		return blockmap.Run{Off: vs + (lo - p), Len: hi - lo, Kind: blockmap.Zero}
	}
	hi = min(hi, v.size)
	return blockmap.Run{Off: vs + (lo - p), Len: hi - lo, Kind: blockmap.Stored, Src: v.r, Phys: lo}
}
