package integrity

import "sync"

// Span is a range of a verified file's bytes, held in the buffers they
// were checked in. A reader that can send scattered buffers (the FUSE
// layer's writev) passes them on as they are: copying a checked chunk into
// a reply buffer first cost as much as reading it from the archive.
type Span struct {
	// Slices are the bytes, in order. They stay valid until Release.
	Slices [][]byte
	held   []*cachedChunk // nil where a chunk failed to load
	n      int
}

// Release lets go of the buffers; Slices must not be used afterwards.
// Calling it again does nothing.
func (s *Span) Release() {
	for _, e := range s.held {
		if e != nil {
			recent.release(e)
		}
	}
	s.held, s.Slices, s.n = nil, nil, 0
}

// Len is the number of bytes in the span.
func (s *Span) Len() int { return s.n }

// checkedSpan gets the checked chunks holding [off, off+n), which must lie
// inside the file. A read usually straddles two chunks; they are checked
// in parallel, so that neighbouring read-ahead requests, which share
// chunks, do not queue behind each other's first one.
func (f *File) checkedSpan(off int64, n int) (*Span, error) {
	first, last := int(off/ChunkSize), int((off+int64(n)-1)/ChunkSize)
	f.checkAhead(first, last)
	sp := &Span{held: make([]*cachedChunk, last-first+1), n: n}
	errs := make([]error, len(sp.held))
	var wg sync.WaitGroup
	for c := first; c <= last; c++ {
		load := func() { sp.held[c-first], errs[c-first] = f.checkedChunk(c) }
		if c == last {
			load()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			load()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			sp.Release()
			return nil, err
		}
	}
	// Each chunk holds all its bytes (checkedChunk's buffers are sized to
	// the chunk), so the pieces below cover [off, off+n) exactly.
	end := off + int64(n)
	sp.Slices = make([][]byte, len(sp.held))
	for i, e := range sp.held {
		base := int64(first+i) * ChunkSize
		sp.Slices[i] = e.data[max(off, base)-base : min(end, base+int64(len(e.data)))-base]
	}
	return sp, nil
}
