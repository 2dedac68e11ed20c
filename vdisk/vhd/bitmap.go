package vhd

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// Sector bitmaps of a differencing disk are read on demand and kept in a
// small LRU. vdisk calls Map once per run, so a block whose bits alternate
// is mapped many times in a row; without the cache each call would read the
// block's bitmap again (a 512-byte read for a 2 MiB block, through the
// archive's reader, which may be remote). bitmapCacheBytes bounds the
// bytes it keeps, so that large blocks (whose bitmaps are large) keep only
// a few. A variable so tests can turn it off (0) and measure what it saves.
var bitmapCacheBytes = 1 << 20

// sectorBitmap returns the bitmap of block b, whose BAT entry is e. The
// caller has checked (blockData) that it lies inside the image and off its
// metadata.
func (img *Image) sectorBitmap(b int64, e uint32) ([]byte, error) {
	if bm, ok := img.bitmaps.Get(b); ok {
		return bm, nil
	}
	bm := make([]byte, img.bitmap)
	if err := readFull(img.r, bm, int64(e)*sectorSize, "the sector bitmap"); err != nil {
		return nil, err
	}
	img.bitmaps.Put(b, bm, len(bm))
	return bm, nil
}

// mapSectors maps off inside allocated block b of a differencing disk: the
// block covers virtual [start, end) and its data starts at data.
func (img *Image) mapSectors(b int64, e uint32, start, end, data, off int64) (blockmap.Run, error) {
	bm, err := img.sectorBitmap(b, e)
	if err != nil {
		return blockmap.Run{}, fmt.Errorf("vhd: %s: block %d at sector %d: %w", img.name, b, e, err)
	}
	lo, hi, set := bitRun(bm, int((off-start)/sectorSize), int((end-start)/sectorSize))
	run := blockmap.Run{Off: start + int64(lo)*sectorSize, Len: int64(hi-lo) * sectorSize, Kind: blockmap.Hole}
	if set {
		run.Kind, run.Src, run.Phys = blockmap.Stored, img.r, data+int64(lo)*sectorSize
	}
	return run, nil
}

// bitRun returns the run [lo, hi) of bits around bit i, within [0, n), that
// all equal bit i, and that bit. Bits are numbered from the most
// significant bit of byte 0, as the VHD sector bitmap numbers sectors. bm
// must hold whole 64-bit words covering n bits (a VHD bitmap is whole
// sectors), so runs are found a word at a time.
func bitRun(bm []byte, i, n int) (lo, hi int, set bool) {
	n = min(n, len(bm)/8*64)
	word := func(j int) uint64 { return binary.BigEndian.Uint64(bm[8*j:]) }
	j, p := i/64, uint(i%64)
	w := word(j)
	set = w<<p>>63 == 1
	if !set {
		w = ^w
	}
	// Forward: the first differing bit at or after p. A set bit in ^w
	// (after aligning the equal-means-one word) is a difference.
	hi = n
	for x := w; ; {
		if y := ^x << p; y != 0 {
			hi = min(n, 64*j+int(p)+bits.LeadingZeros64(y))
			break
		}
		j, p = j+1, 0
		if 64*j >= n {
			break
		}
		x = word(j)
		if !set {
			x = ^x
		}
	}
	// Backward: the last differing bit before i.
	j, p = i/64, uint(i%64)
	lo = 0
	for x := w; ; {
		if z := ^x >> (64 - p); p > 0 && z != 0 {
			lo = 64*j + int(p) - bits.TrailingZeros64(z)
			break
		}
		if j == 0 {
			break
		}
		j, p = j-1, 64
		x = word(j)
		if !set {
			x = ^x
		}
	}
	return lo, hi, set
}
