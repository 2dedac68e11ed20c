package vmdk

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/internal/readat"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// gtCacheBudget bounds the bytes of grain tables kept per sparse extent:
// 4 MiB of 512-entry tables maps 64 GiB of disk.
const gtCacheBudget = 4 << 20

// sparse maps one hosted sparse extent (KDMV or COWD). All offsets in its
// methods are bytes relative to the extent's first virtual byte.
type sparse struct {
	name  string // names the disk (and the extent) in errors
	r     io.ReaderAt
	rsize int64

	size         int64 // virtual bytes
	grain        int64 // bytes per grain
	grainSectors uint64
	gtes         int64 // entries per grain table
	gtSpan       int64 // virtual bytes one grain table maps

	gd []uint32
	// nextGT[i] is the first directory index at or after i with a grain
	// table, so a run of missing tables becomes a single Hole.
	nextGT []uint32

	compressed bool
	markers    bool

	cache gtCache[uint32]
}

// newSparse checks h against the member and loads the grain directory.
func newSparse(r io.ReaderAt, size int64, h header, name string) (*sparse, error) {
	entries, err := h.check(name, size)
	if err != nil {
		return nil, err
	}
	s := &sparse{
		name:         name,
		r:            r,
		rsize:        size,
		size:         int64(h.capacity) * sectorSize,
		grain:        int64(h.grainSize) * sectorSize,
		grainSectors: h.grainSize,
		gtes:         int64(h.numGTEs),
		compressed:   h.compressed(),
		markers:      h.markers(),
	}
	s.gtSpan = s.gtes * s.grain
	s.cache.init(max(16, gtCacheBudget/int(s.gtes*4)))
	if entries == 0 {
		return s, nil // capacity 0: Map is never called
	}

	// check has bounded entries*4 by the member's size.
	raw := make([]byte, entries*4)
	gdAt := int64(h.gdOffset) * sectorSize
	if err := readat.Full(r, raw, gdAt); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the grain directory (%d entries at offset %d): %w", name, entries, gdAt, err)
	}
	s.gd = make([]uint32, entries)
	gdEnd := gdAt + int64(len(raw))
	descAt, descEnd := int64(-1), int64(-1)
	if h.descOffset != 0 && h.descOffset < uint64(size)/sectorSize {
		descAt = int64(h.descOffset) * sectorSize
		descEnd = descAt + int64(min(h.descSize, uint64(size)/sectorSize))*sectorSize
	}
	gtBytes := s.gtes * 4
	for i := range s.gd {
		e := binary.LittleEndian.Uint32(raw[4*i:])
		s.gd[i] = e
		if e == 0 {
			continue
		}
		at := int64(e) * sectorSize
		end := at + gtBytes
		switch {
		case end > size:
			return nil, fmt.Errorf("vmdk: %s: grain directory entry %d points at a grain table at offset %d, past the end (%d bytes): %w",
				name, i, at, size, blockmap.ErrCorrupt)
		case at < gdEnd && gdAt < end:
			return nil, fmt.Errorf("vmdk: %s: grain directory entry %d points at offset %d, inside the grain directory itself: %w",
				name, i, at, blockmap.ErrCorrupt)
		case at < descEnd && descAt < end:
			return nil, fmt.Errorf("vmdk: %s: grain directory entry %d points at offset %d, inside the embedded descriptor: %w",
				name, i, at, blockmap.ErrCorrupt)
		}
	}
	s.nextGT = make([]uint32, entries+1)
	s.nextGT[entries] = uint32(entries)
	for i := int(entries) - 1; i >= 0; i-- {
		if s.gd[i] != 0 {
			s.nextGT[i] = uint32(i)
		} else {
			s.nextGT[i] = s.nextGT[i+1]
		}
	}
	return s, nil
}

// recordHeader is the size of what precedes a compressed grain's data.
func (s *sparse) recordHeader() int64 {
	if s.markers {
		return 12 // lba u64, size u32
	}
	return 4 // size u32
}

// maxRecord bounds a compressed record's data like qemu does: it reads two
// grains, so a stream that deflate expanded is still accepted.
func (s *sparse) maxRecord() int64 { return 2 * s.grain }

// mapAt returns the run holding extent byte v. dec and base are what
// compressed units carry: the extent's decoder and its virtual start.
func (s *sparse) mapAt(v int64, dec blockmap.Decoder, base int64) (blockmap.Run, error) {
	ti := v / s.gtSpan
	gtStart := ti * s.gtSpan
	if s.gd[ti] == 0 {
		end := min(int64(s.nextGT[ti])*s.gtSpan, s.size)
		return blockmap.Run{Off: gtStart, Len: end - gtStart, Kind: blockmap.Hole}, nil
	}
	gt, err := s.table(ti)
	if err != nil {
		return blockmap.Run{}, err
	}
	// lim is the number of this table's grains that lie inside the disk.
	lim := min(s.gtes, (s.size-gtStart+s.grain-1)/s.grain)
	gi := (v - gtStart) / s.grain
	start := gtStart + gi*s.grain
	e := gt[gi]

	if e == 0 || e == 1 {
		// 1 is a zeroed grain when the header's flag says so. Without the
		// flag, sector 1 is the embedded descriptor, never grain data, so
		// it reads as zeros too, as VMware's open-vmdk treats it (qemu
		// would return the descriptor's bytes).
		j := gi + 1
		for j < lim && gt[j] == e {
			j++
		}
		end := gtStart + j*s.grain
		kind := blockmap.Zero
		if e == 0 {
			kind = blockmap.Hole
			if j == s.gtes && ti+1 < int64(len(s.gd)) && s.gd[ti+1] == 0 {
				end = int64(s.nextGT[ti+1]) * s.gtSpan
			}
		}
		return blockmap.Run{Off: start, Len: min(end, s.size) - start, Kind: kind}, nil
	}

	phys := int64(e) * sectorSize
	if phys >= s.rsize || (s.compressed && phys+s.recordHeader() > s.rsize) {
		return blockmap.Run{}, fmt.Errorf("vmdk: %s: grain table %d entry %d (grain %d, LBA %d) points at offset %d, past the end (%d bytes): %w",
			s.name, ti, gi, start/s.grain, start/sectorSize, phys, s.rsize, blockmap.ErrCorrupt)
	}
	if !s.compressed {
		// Consecutive grains stored back to back become one run.
		j := gi + 1
		for j < lim && uint64(gt[j]) == uint64(e)+uint64(j-gi)*s.grainSectors && int64(gt[j])*sectorSize < s.rsize {
			j++
		}
		end := min(gtStart+j*s.grain, s.size)
		return blockmap.Run{Off: start, Len: end - start, Kind: blockmap.Stored, Src: s.r, Phys: phys}, nil
	}
	end := min(start+s.grain, s.size)
	return blockmap.Run{
		Off:  start,
		Len:  end - start,
		Kind: blockmap.Compressed,
		Unit: blockmap.Unit{
			Dec:  dec,
			ID:   phys,
			Off:  base + start,
			Size: int(s.grain),
			Phys: phys,
			Span: min(s.rsize-phys, s.recordHeader()+s.maxRecord()),
		},
	}, nil
}

// table returns grain table ti, from the cache or from the member. The
// returned slice is never modified, so callers may use it unlocked.
func (s *sparse) table(ti int64) ([]uint32, error) {
	if gt := s.cache.get(uint32(ti)); gt != nil {
		return gt, nil
	}
	raw := make([]byte, s.gtes*4)
	at := int64(s.gd[ti]) * sectorSize
	if err := readat.Full(s.r, raw, at); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading grain table %d at offset %d: %w", s.name, ti, at, err)
	}
	gt := make([]uint32, s.gtes)
	for i := range gt {
		gt[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	s.cache.put(uint32(ti), gt)
	return gt, nil
}
