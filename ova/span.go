package ova

import (
	"fmt"
	"sync"
)

// Span is a range of a verified file's bytes, held in the buffers they
// were checked in. A reader that can send scattered buffers (the FUSE
// layer's writev) passes them on as they are: copying a checked chunk into
// a reply buffer first cost as much as reading it from the archive.
type Span struct {
	// Slices are the bytes, in order. They stay valid until Release.
	Slices [][]byte
	held   []*cachedChunk
}

// Release lets go of the buffers; Slices must not be used afterwards.
// Calling it again does nothing.
func (s *Span) Release() {
	for _, e := range s.held {
		recent.release(e)
	}
	s.held, s.Slices = nil, nil
}

// Len is the number of bytes in the span.
func (s *Span) Len() int {
	n := 0
	for _, b := range s.Slices {
		n += len(b)
	}
	return n
}

// CheckedSpan returns bytes [off, off+n) of the file when its reads are
// checked chunk by chunk (it was verified, here or in an earlier run); n
// is cut at the end of the file. ok is false when reads are served some
// other way now (verification off or still pending, an unlisted file, a
// bad signature on a strict mount, off past the end): ReadAt then gives
// the answer, error included.
func (f *VerifiedFile) CheckedSpan(off int64, n int) (sp *Span, ok bool, err error) {
	mode := f.in.opts.Mode
	if mode == VerifyOff || f.meta || !f.listed || off < 0 || off >= f.m.Size || n <= 0 ||
		(mode == VerifyStrict && f.in.sig.State == "bad") {
		return nil, false, nil
	}
	f.mu.Lock()
	st, fail := f.status, f.fail
	f.mu.Unlock()
	switch st {
	case StatusMismatch:
		return nil, true, fail
	case StatusVerified:
		sp, err := f.checkedSpan(off, int(min(int64(n), f.m.Size-off)))
		return sp, true, err
	}
	return nil, false, nil
}

// checkedSpan gets the checked chunks holding [off, off+n), which must lie
// inside the file. A read usually straddles two chunks; they are checked
// in parallel, so that neighbouring read-ahead requests, which share
// chunks, do not queue behind each other's first one.
func (f *VerifiedFile) checkedSpan(off int64, n int) (*Span, error) {
	first, last := int(off/ChunkSize), int((off+int64(n)-1)/ChunkSize)
	held := make([]*cachedChunk, last-first+1)
	errs := make([]error, len(held))
	var wg sync.WaitGroup
	for c := first; c <= last; c++ {
		load := func() { held[c-first], errs[c-first] = f.checkedChunk(c) }
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
	sp := &Span{held: make([]*cachedChunk, 0, len(held)), Slices: make([][]byte, 0, len(held))}
	var firstErr error
	for i, e := range held {
		if errs[i] != nil {
			if firstErr == nil {
				firstErr = errs[i]
			}
			continue
		}
		sp.held = append(sp.held, e)
	}
	if firstErr != nil {
		sp.Release()
		return nil, firstErr
	}
	end := off + int64(n)
	for i, e := range held {
		base := int64(first+i) * ChunkSize
		lo, hi := max(off, base)-base, min(end, base+int64(len(e.data)))-base
		if hi < lo {
			sp.Release()
			return nil, fmt.Errorf("ova: %s: chunk %d holds %d bytes, short of offset %d", f.m.Name, first+i, len(e.data), end)
		}
		sp.Slices = append(sp.Slices, e.data[lo:hi])
	}
	return sp, nil
}
