package overlay

import "slices"

// run is a range of data-file slots.
type run struct{ start, n uint64 }

// allocator hands out data-file slots: reused free runs first, then new
// slots past the end of the file, so that a long write lands in one piece
// when it can. Callers lock.
type allocator struct {
	free []run  // runs no committed map entry names; the last is used first
	end  uint64 // slots at or past end are past the file
}

// take allocates n slots as one or more runs, appending them to into.
func (a *allocator) take(n uint64, into []run) []run {
	for n > 0 && len(a.free) > 0 {
		r := &a.free[len(a.free)-1]
		k := min(n, r.n)
		into = append(into, run{r.start, k})
		r.start += k
		r.n -= k
		n -= k
		if r.n == 0 {
			a.free = a.free[:len(a.free)-1]
		}
	}
	if n > 0 {
		into = append(into, run{a.end, n})
		a.end += n
	}
	return into
}

// coalesce sorts slots into runs of consecutive slots.
func coalesce(slots []uint64) []run {
	slices.Sort(slots)
	var rs []run
	for _, s := range slots {
		if k := len(rs); k > 0 && rs[k-1].start+rs[k-1].n == s {
			rs[k-1].n++
			continue
		}
		rs = append(rs, run{s, 1})
	}
	return rs
}

// give returns runs to the free list. It does not sort it: take pops the
// latest runs, and a sync frees a few runs at a time, so sorting would
// cost more per sync than scattered slots cost later reads.
func (a *allocator) give(rs []run) {
	a.free = append(a.free, rs...)
}
