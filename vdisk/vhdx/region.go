package vhdx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// span is a named range of the file that no other structure may overlap.
type span struct {
	off, end int64
	what     string
}

// spans is the set of file ranges the image's structures occupy, sorted
// and disjoint. Like qemu, the package refuses structures (and payload
// blocks) that overlap each other, because an image whose tables point
// into each other can only be read by guessing which write came last.
// Sorting keeps the check of every BAT entry logarithmic even against the
// 2047 regions a hostile region table may list.
type spans []span

// overlap returns a span that [off, end) overlaps, if any.
func (s spans) overlap(off, end int64) (span, bool) {
	i := sort.Search(len(s), func(i int) bool { return s[i].end > off })
	if i < len(s) && s[i].off < end {
		return s[i], true
	}
	return span{}, false
}

// add inserts a span that overlaps none of s.
func (s *spans) add(sp span) {
	i := sort.Search(len(*s), func(i int) bool { return (*s)[i].off >= sp.end })
	*s = slices.Insert(*s, i, sp)
}

// region is one recognised region table entry.
type region struct {
	off    int64
	length int64
}

// regionTable is the parsed content of the region table in use.
type regionTable struct {
	bat, metadata region
	spans         spans // every region, header section and log included
}

// readRegionTables parses the first region table, or its copy when the
// first is damaged. qemu reads only the first; Hyper-V writes both
// identically, so the copy is a safe fallback that lets a damaged file be
// read, and the fallback is reported as a warning.
func readRegionTables(v io.ReaderAt, fixed spans, name string) (*regionTable, []string, error) {
	rt, damage1, err := readRegionTable(v, regionTable1, fixed, name)
	// An intact table is authoritative, even when what it asks for is
	// refused: only a damaged one gives way to the copy.
	if damage1 == "" {
		return rt, nil, err
	}
	rt, damage2, err := readRegionTable(v, regionTable2, fixed, name)
	if damage2 == "" {
		if err != nil {
			return nil, nil, err
		}
		return rt, []string{fmt.Sprintf("region table 1 at %d is damaged (%s); using region table 2", regionTable1, damage1)}, nil
	}
	return nil, nil, corrupt(name, "no usable region table (table 1 at %d: %s; table 2 at %d: %s)",
		regionTable1, damage1, regionTable2, damage2)
}

// readRegionTable parses the region table at off. A table that fails its
// own framing (read, signature, CRC, count) is reported as damage, and the
// copy may be tried; a table that passes them decides the outcome.
func readRegionTable(v io.ReaderAt, off int64, fixed spans, name string) (*regionTable, string, error) {
	b := make([]byte, regionTableSize)
	if _, err := v.ReadAt(b, off); err != nil {
		var pe *pastEndError
		if errors.As(err, &pe) {
			return nil, err.Error(), nil
		}
		return nil, "", readFail(name, "the region table", off, err)
	}
	if binary.LittleEndian.Uint32(b[0:]) != regiSig {
		return nil, "no \"regi\" signature", nil
	}
	if !checksumOK(b) {
		return nil, "bad CRC-32C", nil
	}
	count := binary.LittleEndian.Uint32(b[8:])
	if count > 2047 {
		return nil, fmt.Sprintf("%d entries, more than the 2047 allowed", count), nil
	}
	rt := &regionTable{spans: slices.Clone(fixed)}
	var haveBAT, haveMeta bool
	for i := range int(count) {
		e := b[16+32*i : 48+32*i]
		var id guid
		copy(id[:], e[0:16])
		fo := binary.LittleEndian.Uint64(e[16:])
		length := int64(binary.LittleEndian.Uint32(e[24:]))
		required := binary.LittleEndian.Uint32(e[28:])&1 != 0
		if fo > uint64(1)<<62 {
			return nil, "", corrupt(name, "region table entry %d (%v) has an absurd offset %d", i, id, fo)
		}
		r := region{off: int64(fo), length: length}
		if o, ok := rt.spans.overlap(r.off, r.off+r.length); ok {
			return nil, "", corrupt(name, "region %d (%v, %d bytes at %d) overlaps %s [%d, %d)",
				i, id, r.length, r.off, o.what, o.off, o.end)
		}
		what := fmt.Sprintf("region %v", id)
		switch id {
		case regionBAT:
			if haveBAT {
				return nil, "", corrupt(name, "region table lists the BAT region twice")
			}
			haveBAT, rt.bat, what = true, r, "the BAT region"
		case regionMetadata:
			if haveMeta {
				return nil, "", corrupt(name, "region table lists the metadata region twice")
			}
			haveMeta, rt.metadata, what = true, r, "the metadata region"
		default:
			if required {
				return nil, "", unsupported(name, "region %v (%d bytes at %d) is marked required but is unknown", id, r.length, r.off)
			}
		}
		if r.length > 0 {
			rt.spans.add(span{r.off, r.off + r.length, what})
		}
	}
	if !haveBAT || !haveMeta {
		return nil, "", corrupt(name, "region table at %d lacks the BAT or the metadata region", off)
	}
	return rt, "", nil
}
