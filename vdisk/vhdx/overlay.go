package vhdx

import (
	"bytes"
	"container/heap"
	"io"
	"sort"
)

// write is one sector range a log entry puts into the file: data (4 KiB,
// from a data descriptor) or zeros (data == nil, from a zero descriptor).
type write struct {
	off, end int64
	data     []byte
}

// extent is a range of the file whose replayed content differs from the
// member: data held in memory, or zeros.
type extent struct {
	off, end int64
	data     []byte        // nil: zeros
	src      *bytes.Reader // over data, the Src of runs that read it
}

// overlay is the file content the log replay produces, as sorted,
// non-overlapping extents. Keeping it apart from the member means the
// member is never written and a Stored run can point straight at the
// member wherever the log did not touch it.
type overlay struct {
	ext []extent
}

// paint builds the overlay of writes applied in order (a later write wins
// where writes overlap). Zero descriptors can cover huge ranges, so the
// result is computed by sweeping over the writes' boundaries with a heap
// of the writes covering the current point, not sector by sector: the cost
// is O(n log n) in the number of writes whatever the ranges.
func paint(ws []write) *overlay {
	ov := &overlay{}
	if len(ws) == 0 {
		return ov
	}
	bounds := make([]int64, 0, 2*len(ws))
	order := make([]int, len(ws))
	for i, w := range ws {
		bounds = append(bounds, w.off, w.end)
		order[i] = i
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i] < bounds[j] })
	bounds = compact(bounds)
	sort.SliceStable(order, func(i, j int) bool { return ws[order[i]].off < ws[order[j]].off })

	var h latest
	next := 0
	for bi := 0; bi+1 < len(bounds); bi++ {
		x, y := bounds[bi], bounds[bi+1]
		for next < len(order) && ws[order[next]].off == x {
			heap.Push(&h, order[next])
			next++
		}
		for h.Len() > 0 && ws[h[0]].end <= x {
			heap.Pop(&h)
		}
		if h.Len() == 0 {
			continue
		}
		w := ws[h[0]]
		var seg []byte
		if w.data != nil {
			seg = w.data[x-w.off : y-w.off]
		}
		ov.add(x, y, seg)
	}
	for i := range ov.ext {
		if ov.ext[i].data != nil {
			ov.ext[i].src = bytes.NewReader(ov.ext[i].data)
		}
	}
	return ov
}

// add appends [off, end) after the last extent, merging it into that
// extent when they touch and hold the same kind of content.
func (o *overlay) add(off, end int64, data []byte) {
	if n := len(o.ext); n > 0 {
		last := &o.ext[n-1]
		if last.end == off && (last.data == nil) == (data == nil) {
			last.end = end
			if data != nil {
				last.data = append(last.data, data...)
			}
			return
		}
	}
	e := extent{off: off, end: end}
	if data != nil {
		e.data = append([]byte(nil), data...)
	}
	o.ext = append(o.ext, e)
}

func compact(s []int64) []int64 {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// latest is a max-heap of write indexes: the top is the last write.
type latest []int

func (h latest) Len() int           { return len(h) }
func (h latest) Less(i, j int) bool { return h[i] > h[j] }
func (h latest) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *latest) Push(x any)        { *h = append(*h, x.(int)) }
func (h *latest) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// end is the file offset just past the last replayed byte (0 if none).
func (o *overlay) end() int64 {
	if len(o.ext) == 0 {
		return 0
	}
	return o.ext[len(o.ext)-1].end
}

// search returns the index of the first extent ending after off.
func (o *overlay) search(off int64) int {
	return sort.Search(len(o.ext), func(i int) bool { return o.ext[i].end > off })
}

// view is the image file as it reads after the log replay: the member,
// extended with zeros up to the replay's end when the log grew the file,
// with the overlay on top. The package reads all its structures through it.
type view struct {
	r    io.ReaderAt
	size int64 // the member's length
	eff  int64 // the replayed file's length, >= size
	ov   *overlay
}

// ReadAt fills p from the replayed file; reading past its end is an error,
// since every caller reads a structure that must lie inside the file.
func (v *view) ReadAt(p []byte, off int64) (int, error) {
	if pastEnd(len(p), off, v.eff) {
		return 0, &pastEndError{int64(len(p)), off, v.eff}
	}
	end := off + int64(len(p))
	if in := min(end, v.size); in > off {
		if err := readAt(v.r, v.size, p[:in-off], off); err != nil {
			return 0, err
		}
	}
	if end > v.size {
		clear(p[max(v.size, off)-off:])
	}
	for i := v.ov.search(off); i < len(v.ov.ext) && v.ov.ext[i].off < end; i++ {
		e := v.ov.ext[i]
		lo, hi := max(e.off, off), min(e.end, end)
		dst := p[lo-off : hi-off]
		if e.data == nil {
			clear(dst)
		} else {
			copy(dst, e.data[lo-e.off:])
		}
	}
	return len(p), nil
}
