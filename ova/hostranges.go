package ova

import (
	"os"
	"sort"

	"github.com/ovfmount/ovfmount/route"
)

// HostRanges implements route.Ranger: the ranges of the archive file that
// hold the member's bytes [off, off+n), with a sparse member's holes as
// zero ranges, when the archive is a local file that still is what was
// indexed. A remote archive, a truncated member or an archive that changed
// answers no, and the bytes are read (and the change reported) instead.
func (m *Member) HostRanges(off int64, n int) ([]route.Range, bool) {
	if m.Type != TypeFile || off < 0 || n <= 0 || off+int64(n) > m.avail {
		return nil, false
	}
	fd, ok := hostFD(m.src)
	if !ok {
		return nil, false
	}
	end := off + int64(n)
	var out []route.Range
	i := sort.Search(len(m.frags), func(i int) bool { return m.frags[i].off+m.frags[i].len > off })
	for pos := off; pos < end; {
		if i >= len(m.frags) || m.frags[i].off >= end {
			out = append(out, route.Range{Len: int(end - pos), Zero: true})
			break
		}
		f := m.frags[i]
		if f.off > pos {
			out = append(out, route.Range{Len: int(f.off - pos), Zero: true})
			pos = f.off
		}
		stop := min(end, f.off+f.len)
		out = append(out, route.Range{FD: fd, Off: f.phys + (pos - f.off), Len: int(stop - pos)})
		pos = stop
		i++
	}
	return out, true
}

// hostFD is the descriptor of a local archive file, for zero-copy reads.
func hostFD(src any) (uintptr, bool) {
	switch f := src.(type) {
	case *os.File:
		return f.Fd(), true
	case *WatchedFile:
		// A splice from a file that shrank would come back short, which
		// the kernel takes for the end of the file: check first, and let
		// the copying path report the change.
		if f.Check() != nil {
			return 0, false
		}
		return f.Fd(), true
	}
	return 0, false
}
