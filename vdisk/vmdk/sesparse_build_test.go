package vmdk

import (
	"encoding/binary"
	"sort"
)

// seKind is what an seSparse grain table entry says about a grain.
type seKind uint8

const (
	seHole seKind = iota
	seUnmapped
	seZeroed
	seData
)

// seSpec describes an seSparse extent built from the layout qemu reads
// (block/vmdk.c, vmdk_open_se_sparse and get_cluster_offset): a constant
// header, a volatile header, a grain directory of 64-bit entries naming
// tables in the grain tables area, tables of 4096 64-bit entries, and
// 4 KiB grains in the grains area.
type seSpec struct {
	capacity uint64           // sectors
	grains   map[int64]seKind // by grain number; absent means seHole
	data     func(g int64) []byte
	// reverse places tables and grains in the reverse of their virtual
	// order (except runs of neighbours, which stay together), so that
	// table and grain numbers differ from their directory and table
	// indexes.
	reverse bool
	// highGrains numbers stored grains from 4095, so that their numbers
	// need the entry's high bits and a run of neighbours crosses from one
	// encoding to the other (the file grows by 16 MiB).
	highGrains bool
}

// seBuilt is an seSpec's file and where its structures landed.
type seBuilt struct {
	file    []byte
	gdAt    int64           // byte offset of the grain directory
	gtAt    map[int64]int64 // byte offset of each table, by directory index
	grainAt map[int64]int64 // byte offset of each stored grain
}

const seTestGrain = 4096

func (s seSpec) build() seBuilt {
	le := binary.LittleEndian
	const (
		gdSector = 16
	)
	gtCount := (s.capacity + seGTEs*8 - 1) / (seGTEs * 8)
	gdSectors := (gtCount*8+511)/512 + 1 // one spare sector
	// Which tables exist: those with any entry other than unallocated.
	var used []int64
	seen := map[int64]bool{}
	var allocated []int64
	for g, k := range s.grains {
		if k == seHole {
			continue
		}
		if t := g / seGTEs; !seen[t] {
			seen[t] = true
			used = append(used, t)
		}
		if k == seData {
			allocated = append(allocated, g)
		}
	}
	sort.Slice(used, func(i, j int) bool { return used[i] < used[j] })
	sort.Slice(allocated, func(i, j int) bool { return allocated[i] < allocated[j] })
	if s.reverse {
		for i, j := 0, len(used)-1; i < j; i, j = i+1, j-1 {
			used[i], used[j] = used[j], used[i]
		}
		allocated = reverseRuns(allocated)
	}
	tablesArea := uint64(len(used)) * seGTSectors
	gtsAt := uint64(gdSector) + gdSectors
	grainsAt := gtsAt + tablesArea
	first := uint64(0)
	if s.highGrains {
		first = 4095
	}
	grainsSectors := (first + uint64(len(allocated))) * 8
	total := (grainsAt + grainsSectors) * 512

	b := seBuilt{file: make([]byte, total), gdAt: gdSector * 512, gtAt: map[int64]int64{}, grainAt: map[int64]int64{}}
	f := b.file
	h := f[:512]
	put := func(i int, v uint64) { le.PutUint64(h[8*i:], v) }
	put(0, seConstMagic)
	put(1, seVersion)
	put(2, s.capacity)
	put(3, 8)
	put(4, 64)
	put(10, 1) // volatile header
	put(11, 1)
	put(12, 2) // journal header
	put(13, 1)
	put(14, 3) // journal
	put(15, 8)
	put(16, gdSector)
	put(17, gdSectors)
	put(18, gtsAt)
	put(19, tablesArea)
	put(20, grainsAt+grainsSectors) // free bitmap and backmap: empty, at the end
	put(22, grainsAt+grainsSectors)
	put(24, grainsAt)
	put(25, grainsSectors)
	le.PutUint64(f[512:], seVolatileMagic)
	le.PutUint64(f[520:], uint64(len(used)))

	tableIdx := map[int64]uint64{}
	for i, t := range used {
		tableIdx[t] = uint64(i)
		le.PutUint64(f[b.gdAt+8*t:], uint64(seGDAllocated)<<32|uint64(i))
		b.gtAt[t] = int64(gtsAt+uint64(i)*seGTSectors) * 512
	}
	grainIdx := map[int64]uint64{}
	for i, g := range allocated {
		grainIdx[g] = first + uint64(i)
		at := int64(grainsAt+(first+uint64(i))*8) * 512
		b.grainAt[g] = at
		copy(f[at:at+seTestGrain], s.data(g))
	}
	for g, k := range s.grains {
		var e uint64
		switch k {
		case seHole:
			continue
		case seUnmapped:
			e = 0x1 << 60
		case seZeroed:
			e = 0x2 << 60
		case seData:
			n := grainIdx[g]
			e = 0x3<<60 | (n&0xfff)<<48 | n>>12
		}
		le.PutUint64(f[b.gtAt[g/seGTEs]+8*(g%seGTEs):], e)
	}
	return b
}

// reverseRuns reverses a sorted list of grain numbers by runs of
// neighbours: [1 2 3 7 9 10] becomes [9 10 7 1 2 3].
func reverseRuns(gs []int64) []int64 {
	var runs [][]int64
	for i := 0; i < len(gs); {
		j := i + 1
		for j < len(gs) && gs[j] == gs[j-1]+1 {
			j++
		}
		runs = append(runs, gs[i:j])
		i = j
	}
	var out []int64
	for i := len(runs) - 1; i >= 0; i-- {
		out = append(out, runs[i]...)
	}
	return out
}
