package audit

import "sort"

// span is the bytes [off, end) of a file.
type span struct{ off, end int64 }

// spans is a set of byte ranges, sorted and merged: adjacent or
// overlapping ranges become one, so that a sequential reader's thousands
// of reads are one range, and a random reader's are as many as the holes
// between them.
type spans []span

// add puts [off, off+n) in the set. A sequential reader extends the last
// range in constant time; any other read is placed by binary search.
func (s *spans) add(off, n int64) {
	if n <= 0 {
		return
	}
	end := off + n
	a := *s
	if k := len(a); k == 0 || off > a[k-1].end {
		*s = append(a, span{off, end})
		return
	} else if off >= a[k-1].off {
		a[k-1].end = max(a[k-1].end, end)
		return
	}
	// The first range that ends at or after off: it and every later one
	// that starts at or before end merge with the new one.
	i := sort.Search(len(a), func(i int) bool { return a[i].end >= off })
	j := i
	for j < len(a) && a[j].off <= end {
		off, end = min(off, a[j].off), max(end, a[j].end)
		j++
	}
	if i == j {
		a = append(a, span{})
		copy(a[i+1:], a[i:])
		a[i] = span{off, end}
		*s = a
		return
	}
	a[i] = span{off, end}
	*s = append(a[:i+1], a[j:]...)
}

// bytes is how many bytes the set covers.
func (s spans) bytes() int64 {
	var n int64
	for _, r := range s {
		n += r.end - r.off
	}
	return n
}

// pairs is the set as [offset, length] pairs, as lines hold them.
func (s spans) pairs() [][2]int64 {
	out := make([][2]int64, len(s))
	for i, r := range s {
		out[i] = [2]int64{r.off, r.end - r.off}
	}
	return out
}
