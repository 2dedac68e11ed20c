package vhdx

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// The part of a sector bitmap block that covers one payload block is read
// on demand and kept in a small LRU: vdisk calls Map once per run, so a
// block whose bits alternate is mapped many times in a row. The cache
// holds at most bitmapCacheBytes bytes of them (a block's slice is 32
// bytes to 64 KiB). A variable so tests can turn it off.
var bitmapCacheBytes = 1 << 20

// blockBitmap returns the bits of payload block blk: a slice of the sector
// bitmap block of its chunk, which must be present ([MS-VHDX] 2.5.1.2).
func (img *Image) blockBitmap(blk int64) ([]byte, error) {
	if bm, ok := img.bitmaps.Get(blk); ok {
		return bm, nil
	}
	chunk := blk / img.chunkRatio
	sb := chunk*(img.chunkRatio+1) + img.chunkRatio
	page, base, err := img.bat.page(sb)
	if err != nil {
		return nil, err
	}
	e := page[sb-base]
	if st := e & batStateMask; st != sbBlockPresent {
		return nil, corrupt(img.name, "block %d is PARTIALLY_PRESENT but the sector bitmap of its chunk %d (BAT entry %d) is in state %d, not present",
			blk, chunk, sb, st)
	}
	perBlock := img.blockSize / img.sector / 8
	off := int64(e>>20)<<20 + (blk%img.chunkRatio)*perBlock
	bm := make([]byte, perBlock)
	if _, err := img.view.ReadAt(bm, off); err != nil {
		return nil, readFail(img.name, fmt.Sprintf("the sector bitmap of block %d", blk), off, err)
	}
	img.bitmaps.Put(blk, bm, len(bm))
	return bm, nil
}

// mapPartial maps off inside PARTIALLY_PRESENT block blk (BAT entry e): the
// longest run of sectors around off whose bitmap bits agree, Stored in the
// block where they are set, a Hole (the parent's) where they are clear.
func (img *Image) mapPartial(blk int64, e uint64, off int64) (blockmap.Run, error) {
	bm, err := img.blockBitmap(blk)
	if err != nil {
		return blockmap.Run{}, err
	}
	vs := blk * img.blockSize
	ve := min(vs+img.blockSize, img.size)
	lo, hi, set := bitRun(bm, int((off-vs)/img.sector), int((ve-vs)/img.sector))
	rs, re := vs+int64(lo)*img.sector, vs+int64(hi)*img.sector
	if !set {
		return blockmap.Run{Off: rs, Len: re - rs, Kind: blockmap.Hole}, nil
	}
	p := int64(e>>20)<<20 + (rs - vs)
	return img.fileRun(rs, re, p, off), nil
}

// bitRun returns the run [lo, hi) of bits around bit i, within [0, n), that
// all equal bit i, and that bit. Bit k is bit k%8 of byte k/8 (the least
// significant first, [MS-VHDX] 2.4), so a little-endian 64-bit word holds
// bits in order and runs are found a word at a time. len(bm) must be a
// multiple of 8 (a block's slice is at least 32 bytes, a power of two).
func bitRun(bm []byte, i, n int) (lo, hi int, set bool) {
	n = min(n, len(bm)/8*64)
	word := func(j int, set bool) uint64 {
		w := binary.LittleEndian.Uint64(bm[8*j:])
		if !set {
			w = ^w
		}
		return w // ones where the bit equals the run's
	}
	j, p := i/64, uint(i%64)
	set = binary.LittleEndian.Uint64(bm[8*j:])>>p&1 == 1
	hi = n
	for x := word(j, set); ; {
		if y := ^x >> p; y != 0 {
			hi = min(n, 64*j+int(p)+bits.TrailingZeros64(y))
			break
		}
		if j, p = j+1, 0; 64*j >= n {
			break
		}
		x = word(j, set)
	}
	j, p = i/64, uint(i%64)
	for x := word(j, set); ; {
		if z := ^x << (64 - p); p > 0 && z != 0 {
			lo = 64*j + int(p) - bits.LeadingZeros64(z)
			break
		}
		if j == 0 {
			break
		}
		j, p = j-1, 64
		x = word(j, set)
	}
	return lo, hi, set
}
