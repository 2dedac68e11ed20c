package ova

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

// CheckedSpan returns bytes [off, off+n) of the file when its reads are
// checked chunk by chunk (it was verified, here or in an earlier run); n
// is cut at the end of the file. ok is true with an error when every read
// fails now (a mismatch, say), and false when reads are served some other
// way (verification off or still pending, an unlisted file, off past the
// end): ReadAt then gives the answer.
func (f *VerifiedFile) CheckedSpan(off int64, n int) (sp *Span, ok bool, err error) {
	if off < 0 || off >= f.m.Size || n <= 0 {
		return nil, false, nil
	}
	switch r, err := f.route(); {
	case err != nil:
		return nil, true, err
	case r != routeChecked:
		return nil, false, nil
	}
	sp, err = f.checkedSpan(off, int(min(int64(n), f.m.Size-off)))
	return sp, true, err
}

// checkedSpan gets the checked chunks holding [off, off+n), which must lie
// inside the file. A read usually straddles two chunks; they are checked
// in parallel, so that neighbouring read-ahead requests, which share
// chunks, do not queue behind each other's first one.
func (f *VerifiedFile) checkedSpan(off int64, n int) (*Span, error) {
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
