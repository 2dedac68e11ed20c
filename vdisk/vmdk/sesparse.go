package vmdk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/internal/readat"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// The seSparse ("space-efficient sparse") extent of ESXi snapshots: no
// published specification exists, so this follows what qemu's vmdk driver
// accepts, and as strictly: one version, 4 KiB grains, grain tables of
// 4096 64-bit entries, no flags, a journal with nothing to replay.
const (
	seConstMagic    = 0xcafebabe
	seVolatileMagic = 0xcafecafe
	seVersion       = 0x0000000200000001
	seGrainSectors  = 8
	seGTSectors     = 64
	seGTEs          = seGTSectors * sectorSize / 8 // entries per grain table
	seGrain         = seGrainSectors * sectorSize
	seGTSpan        = seGTEs * seGrain // virtual bytes one grain table maps: 16 MiB

	// A grain directory entry is 0 (no table) or this in its high 32
	// bits and the table's index in the grain tables area in its low 32.
	seGDAllocated = 0x10000000

	// The top nibble of a grain table entry says what the grain is.
	seGTEUnallocated = 0x0
	seGTEUnmapped    = 0x1 // the guest unmapped (trimmed) it: reads as zeros
	seGTEZero        = 0x2
	seGTEAllocated   = 0x3
)

// magicSESparse is how an seSparse extent file begins: the constant
// header's 64-bit magic, little-endian.
var magicSESparse = []byte{0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0}

// seSparse maps one seSparse extent. Offsets in its methods are bytes
// relative to the extent's first virtual byte.
type seSparse struct {
	name  string
	r     io.ReaderAt
	rsize int64
	size  int64 // virtual bytes

	gtAt []int64 // byte offset of each grain table in r; 0 if none
	// nextGT[i] is the first directory index at or after i with a grain
	// table, so a run of missing tables becomes a single Hole.
	nextGT []uint32
	// grainsAt is the grains area's first sector: an allocated grain's
	// index counts grains from there.
	grainsAt uint64

	cache gtCache[uint64]
}

// newSESparse checks an seSparse extent's two headers and loads its grain
// directory.
func newSESparse(r io.ReaderAt, size int64, name string) (*seSparse, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("vmdk: %s: seSparse "+format+": %w", append(append([]any{name}, args...), blockmap.ErrCorrupt)...)
	}
	unsupported := func(format string, args ...any) error {
		return fmt.Errorf("vmdk: %s: seSparse "+format+": %w", append(append([]any{name}, args...), blockmap.ErrUnsupported)...)
	}
	if size < sectorSize {
		return nil, corrupt("extent of %d bytes cannot hold its header", size)
	}
	var hb [sectorSize]byte
	if err := readat.Full(r, hb[:], 0); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the seSparse header: %w", name, err)
	}
	le := binary.LittleEndian
	u := func(i int) uint64 { return le.Uint64(hb[8*i:]) }
	var (
		magic, version, capacity, grainSize, gtSize, flags = u(0), u(1), u(2), u(3), u(4), u(5)
		volatileAt                                         = u(10)
		gdAt, gdSectors                                    = u(16), u(17)
		gtsAt, gtsSectors                                  = u(18), u(19)
		grainsAt                                           = u(24)
	)
	switch {
	case magic != seConstMagic:
		return nil, corrupt("header magic is %#x, want %#x", magic, uint64(seConstMagic))
	case version != seVersion:
		return nil, unsupported("version %#016x (only %#016x is known)", version, uint64(seVersion))
	case grainSize != seGrainSectors:
		return nil, unsupported("grain size of %d sectors (only %d is known)", grainSize, seGrainSectors)
	case gtSize != seGTSectors:
		return nil, unsupported("grain table size of %d sectors (only %d is known)", gtSize, seGTSectors)
	case flags != 0:
		return nil, unsupported("header flags %#x", flags)
	case u(6)|u(7)|u(8)|u(9) != 0:
		return nil, unsupported("reserved header fields are not zero")
	case !isZero(hb[208:]):
		return nil, unsupported("header padding is not zero")
	case capacity > maxCapacity:
		return nil, corrupt("capacity of %d sectors is beyond %d", capacity, uint64(maxCapacity))
	}

	sectors := uint64(size) / sectorSize // whole sectors in the member
	if volatileAt == 0 || volatileAt >= sectors {
		return nil, corrupt("volatile header at sector %d lies outside the extent (%d bytes)", volatileAt, size)
	}
	var vb [sectorSize]byte
	if err := readat.Full(r, vb[:], int64(volatileAt)*sectorSize); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the seSparse volatile header at sector %d: %w", name, volatileAt, err)
	}
	switch {
	case le.Uint64(vb[0:]) != seVolatileMagic:
		return nil, corrupt("volatile header magic is %#x, want %#x", le.Uint64(vb[0:]), uint64(seVolatileMagic))
	case le.Uint64(vb[24:]) != 0:
		return nil, unsupported("journal needs replaying (the snapshot was not closed cleanly); only ESXi can replay it")
	case !isZero(vb[32:]):
		return nil, unsupported("volatile header padding is not zero")
	}

	s := &seSparse{name: name, r: r, rsize: size, size: int64(capacity) * sectorSize, grainsAt: grainsAt}
	s.cache.init(max(16, gtCacheBudget/(seGTEs*8)))
	entries := (capacity + seGTEs*seGrainSectors - 1) / (seGTEs * seGrainSectors)
	if entries == 0 {
		return s, nil // capacity 0: Map is never called
	}
	if gdAt == 0 || gdAt >= sectors || gdSectors > sectors-gdAt {
		return nil, corrupt("grain directory (%d sectors at sector %d) lies outside the extent (%d bytes)", gdSectors, gdAt, size)
	}
	if have := gdSectors * (sectorSize / 8); have < entries {
		return nil, corrupt("grain directory holds %d entries, the capacity of %d sectors needs %d", have, capacity, entries)
	}
	if entries > maxGDEntries {
		return nil, corrupt("grain directory of %d entries is too large (at most %d)", entries, maxGDEntries)
	}
	// The directory lies inside the member, which bounds this.
	raw := make([]byte, entries*8)
	if err := readat.Full(r, raw, int64(gdAt)*sectorSize); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the seSparse grain directory (%d entries at sector %d): %w", name, entries, gdAt, err)
	}
	tables := gtsSectors / seGTSectors // tables the grain tables area holds
	s.gtAt = make([]int64, entries)
	for i := range s.gtAt {
		e := le.Uint64(raw[8*i:])
		if e == 0 {
			continue
		}
		if e>>32 != seGDAllocated {
			return nil, corrupt("grain directory entry %d is %#016x, neither 0 nor an allocated table", i, e)
		}
		idx := e & 0xffffffff
		if idx >= tables {
			return nil, corrupt("grain directory entry %d names grain table %d, outside the grain tables area of %d tables", i, idx, tables)
		}
		// idx < 2^32, so idx*seGTSectors cannot overflow.
		if gtsAt >= sectors || idx*seGTSectors+seGTSectors > sectors-gtsAt {
			return nil, corrupt("grain directory entry %d names grain table %d at sector %d, past the end (%d bytes)",
				i, idx, gtsAt+idx*seGTSectors, size)
		}
		s.gtAt[i] = int64(gtsAt+idx*seGTSectors) * sectorSize
	}
	s.nextGT = make([]uint32, entries+1)
	s.nextGT[entries] = uint32(entries)
	for i := int(entries) - 1; i >= 0; i-- {
		if s.gtAt[i] != 0 {
			s.nextGT[i] = uint32(i)
		} else {
			s.nextGT[i] = s.nextGT[i+1]
		}
	}
	return s, nil
}

// seGrainIndex decodes an allocated entry's grain number: its low 48 bits
// are the number's high bits, and bits 48 to 59 its low 12 bits.
func seGrainIndex(e uint64) uint64 {
	return (e&0x0fff000000000000)>>48 | (e&0x0000ffffffffffff)<<12
}

// grainPhys returns the byte offset of grain idx of the grains area, or
// false when it lies past the end of the member.
func (s *seSparse) grainPhys(idx uint64) (int64, bool) {
	sectors := uint64(s.rsize) / sectorSize
	if s.grainsAt >= sectors || idx >= (sectors-s.grainsAt)/seGrainSectors+1 {
		return 0, false
	}
	at := s.grainsAt + idx*seGrainSectors
	if at >= sectors {
		return 0, false
	}
	return int64(at) * sectorSize, true
}

// mapAt returns the run holding extent byte v.
func (s *seSparse) mapAt(v int64) (blockmap.Run, error) {
	ti := v / seGTSpan
	gtStart := ti * seGTSpan
	if s.gtAt[ti] == 0 {
		end := min(int64(s.nextGT[ti])*seGTSpan, s.size)
		return blockmap.Run{Off: gtStart, Len: end - gtStart, Kind: blockmap.Hole}, nil
	}
	gt, err := s.table(ti)
	if err != nil {
		return blockmap.Run{}, err
	}
	lim := min(seGTEs, (s.size-gtStart+seGrain-1)/seGrain)
	gi := (v - gtStart) / seGrain
	start := gtStart + gi*seGrain
	e := gt[gi]
	bad := func(why string) error {
		return fmt.Errorf("vmdk: %s: seSparse grain table %d entry %d (grain %d, LBA %d) is %#016x, %s: %w",
			s.name, ti, gi, start/seGrain, start/sectorSize, e, why, blockmap.ErrCorrupt)
	}
	run := func(j int64, kind blockmap.Kind) blockmap.Run {
		return blockmap.Run{Off: start, Len: min(gtStart+j*seGrain, s.size) - start, Kind: kind}
	}
	switch e >> 60 {
	case seGTEUnallocated:
		if e != 0 {
			return blockmap.Run{}, bad("an unallocated entry with other bits set")
		}
		j := gi + 1
		for j < lim && gt[j] == 0 {
			j++
		}
		r := run(j, blockmap.Hole)
		if j == seGTEs && ti+1 < int64(len(s.gtAt)) && s.gtAt[ti+1] == 0 {
			r.Len = min(int64(s.nextGT[ti+1])*seGTSpan, s.size) - start
		}
		return r, nil
	case seGTEUnmapped, seGTEZero:
		j := gi + 1
		for j < lim && (gt[j]>>60 == seGTEUnmapped || gt[j]>>60 == seGTEZero) {
			j++
		}
		return run(j, blockmap.Zero), nil
	case seGTEAllocated:
		idx := seGrainIndex(e)
		phys, ok := s.grainPhys(idx)
		if !ok {
			return blockmap.Run{}, bad(fmt.Sprintf("grain %d of the grains area (from sector %d), past the end (%d bytes)", idx, s.grainsAt, s.rsize))
		}
		// Grains stored back to back become one run.
		j := gi + 1
		for ; j < lim && gt[j]>>60 == seGTEAllocated && seGrainIndex(gt[j]) == idx+uint64(j-gi); j++ {
			if _, ok := s.grainPhys(idx + uint64(j-gi)); !ok {
				break
			}
		}
		r := run(j, blockmap.Stored)
		r.Src, r.Phys = s.r, phys
		return r, nil
	}
	return blockmap.Run{}, bad("of unknown type")
}

// table returns grain table ti, from the cache or from the member. The
// returned slice is never modified.
func (s *seSparse) table(ti int64) ([]uint64, error) {
	if gt := s.cache.get(uint32(ti)); gt != nil {
		return gt, nil
	}
	raw := make([]byte, seGTEs*8)
	at := s.gtAt[ti]
	if err := readat.Full(s.r, raw, at); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading seSparse grain table %d at offset %d: %w", s.name, ti, at, err)
	}
	gt := make([]uint64, seGTEs)
	for i := range gt {
		gt[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	s.cache.put(uint32(ti), gt)
	return gt, nil
}

// openSESparseExtent opens a SESPARSE extent's file, once per file.
func (im *Image) openSESparseExtent(opts Options, e extentLine, which string, files map[string]member, ses map[string]*seSparse) (*seSparse, error) {
	if se, ok := ses[e.file]; ok {
		return se, nil
	}
	m, err := im.resolve(opts, e, which, files)
	if err != nil {
		return nil, err
	}
	xname := fmt.Sprintf("%s extent %q", im.name, e.file)
	var first [8]byte
	if err := readPadded(m.r, m.size, first[:], 0); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the header: %w", xname, err)
	}
	if !bytes.Equal(first[:], magicSESparse) {
		return nil, fmt.Errorf("vmdk: %s: SESPARSE extent does not begin with the seSparse magic (%q): %w", xname, first[:], blockmap.ErrCorrupt)
	}
	se, err := newSESparse(m.r, m.size, xname)
	if err != nil {
		return nil, err
	}
	ses[e.file] = se
	return se, nil
}
