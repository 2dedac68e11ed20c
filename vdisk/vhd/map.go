package vhd

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// holeRun is blocks [start, end) of the virtual disk, all unallocated.
// Block numbers fit in 32 bits because a VHD has at most 0xff000000 sectors.
type holeRun struct{ start, end uint32 }

// span is a range of the image holding metadata.
type span struct {
	start, end int64
	what       string
}

// scanBAT records the runs of unallocated blocks, so that Map answers a
// hole with the whole run in one binary search, and checks every allocated
// block once so that Open can warn about the unreadable ones.
func (img *Image) scanBAT() {
	n := uint32(len(img.bat) / 4)
	var bad, alloc int
	var first error
	for b := uint32(0); b < n; b++ {
		e := binary.BigEndian.Uint32(img.bat[4*b:])
		if e == unallocated {
			if k := len(img.holes); k > 0 && img.holes[k-1].end == b {
				img.holes[k-1].end = b + 1
			} else {
				img.holes = append(img.holes, holeRun{b, b + 1})
			}
			continue
		}
		alloc++
		if _, err := img.blockData(int64(b), e); err != nil {
			if bad == 0 {
				first = err
			}
			bad++
		}
	}
	if bad > 0 {
		img.warnings = append(img.warnings, fmt.Sprintf("vhd: %d of %d allocated blocks cannot be read; the first: %v", bad, alloc, first))
	}
}

// blockData returns where the data of block b (BAT entry e) starts, after
// checking that all of it lies in the image and off its metadata.
// A differencing disk reads the block's bitmap too, so there the checked
// range starts at the bitmap.
func (img *Image) blockData(b int64, e uint32) (int64, error) {
	data := int64(e)*sectorSize + img.bitmap
	end := data + img.blockSize
	start, what := data, "data"
	if img.differ {
		start, what = int64(e)*sectorSize, "bitmap and data"
	}
	if end > img.dataEnd {
		return 0, fmt.Errorf("BAT entry %d (block at sector %d) puts the block's %s at [%d, %d), past the end of the image data (%d bytes): %w",
			b, e, what, start, end, img.dataEnd, blockmap.ErrCorrupt)
	}
	for _, m := range img.meta {
		if start < m.end && m.start < end {
			return 0, fmt.Errorf("BAT entry %d (block at sector %d) puts the block's %s at [%d, %d), on top of the %s at [%d, %d): %w",
				b, e, what, start, end, m.what, m.start, m.end, blockmap.ErrCorrupt)
		}
	}
	return data, nil
}

// Map returns the run holding virtual byte off: the whole disk for a fixed
// disk; one block, or a run of unallocated blocks, for a dynamic one. For a
// differencing disk an unallocated block is a Hole (the parent shows
// through), and inside an allocated block the run is the longest stretch of
// sectors whose bitmap bits agree: Stored where set, Hole where clear.
func (img *Image) Map(off int64) (blockmap.Run, error) {
	if off < 0 || off >= img.vsize {
		return blockmap.Run{}, fmt.Errorf("vhd: %s: offset %d is outside the disk (%d bytes)", img.name, off, img.vsize)
	}
	if img.fixed {
		return blockmap.Run{Off: 0, Len: img.vsize, Kind: blockmap.Stored, Src: img.r, Phys: 0}, nil
	}
	b := off >> img.shift
	e := binary.BigEndian.Uint32(img.bat[4*b:])
	if e == unallocated {
		h := img.holeAt(uint32(b))
		start := int64(h.start) << img.shift
		end := min(int64(h.end)<<img.shift, img.vsize)
		return blockmap.Run{Off: start, Len: end - start, Kind: blockmap.Hole}, nil
	}
	data, err := img.blockData(b, e)
	if err != nil {
		return blockmap.Run{}, fmt.Errorf("vhd: %s: reading offset %d: %w", img.name, off, err)
	}
	start := b << img.shift
	end := min(start+img.blockSize, img.vsize)
	if img.differ {
		return img.mapSectors(b, e, start, end, data, off)
	}
	return blockmap.Run{Off: start, Len: end - start, Kind: blockmap.Stored, Src: img.r, Phys: data}, nil
}

// holeAt finds the hole run holding unallocated block b.
func (img *Image) holeAt(b uint32) holeRun {
	lo, hi := 0, len(img.holes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if img.holes[m].end <= b {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return img.holes[lo]
}
