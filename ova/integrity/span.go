package integrity

import (
	"io"
	"sync"
)

// Span is a range of a verified file's bytes, held in the buffers they
// were checked in. A reader that can send scattered buffers (the FUSE
// layer's writev) passes them on as they are: copying a checked chunk into
// a reply buffer first cost as much as reading it from the archive.
type Span struct {
	// Slices are the bytes, in order. They stay valid until Release.
	Slices [][]byte
	held   []*cachedChunk // nil where a chunk failed to load
	pieces *[pieceBufSize]byte
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
	if s.pieces != nil {
		pieceBufs.Put(s.pieces)
	}
	s.held, s.pieces, s.Slices, s.n = nil, nil, nil, 0
}

// Len is the number of bytes in the span.
func (s *Span) Len() int { return s.n }

// randomReadMax is the largest read checked piece by piece when it does
// not continue the previous one. A larger read is no small random read
// (the kernel's read-ahead, a decoder's copy of a whole extent): it is
// served in whole chunks, which also lands them in the recent-chunk cache.
const randomReadMax = 256 << 10

// pieceBufSize holds the pieces any read up to randomReadMax touches.
const pieceBufSize = randomReadMax + PieceSize

// pieceBufs recycles the buffers of random reads, as chunkBufs does those
// of chunks.
var pieceBufs = sync.Pool{New: func() any { return new([pieceBufSize]byte) }}

// checkedSpan gets [off, off+n), which must lie inside the file, read and
// checked against the trusted table. This is where a read's way is
// decided:
//
//   - A read of a sequential reader (see aheadState.note), one larger
//     than randomReadMax, or one that touches a chunk the recent-chunk
//     cache holds is served in whole
//     chunks (chunkSpan): the cache and check-ahead make a sequential
//     reader pay for each chunk once, off its critical path.
//   - Any other read is a random one, served from the pieces it touches
//     alone (pieceSpan): a 4 KiB read reads and hashes 32-64 KiB, not the
//     1-2 MiB of its chunks, and leaves nothing in the cache.
func (f *File) checkedSpan(off int64, n int) (*Span, error) {
	if n <= 0 {
		return &Span{}, nil
	}
	first, last := int(off/ChunkSize), int((off+int64(n)-1)/ChunkSize)
	sequential, reaches := f.ahead.note(first, last)
	chunked := sequential || n > randomReadMax || recent.holdsAny(f, first, last)
	if f.ahead.served(chunked, sequential, reaches) {
		f.checkAhead(last, aheadWindow(n))
	}
	if !chunked {
		return f.pieceSpan(off, n)
	}
	return f.chunkSpan(off, n, first, last)
}

// pieceSpan reads the pieces holding [off, off+n) (n <= randomReadMax) into
// one pooled buffer and checks each against the table.
func (f *File) pieceSpan(off int64, n int) (*Span, error) {
	p0, p1 := off/PieceSize, (off+int64(n)-1)/PieceSize
	start := p0 * PieceSize
	buf := pieceBufs.Get().(*[pieceBufSize]byte)
	b := buf[:min((p1+1)*PieceSize, f.m.Size)-start]
	err := func() error {
		if _, err := f.m.ReadAt(b, start); err != nil && err != io.EOF {
			return err
		}
		return f.checkPieces(b, int(p0))
	}()
	if err != nil {
		pieceBufs.Put(buf)
		return nil, err
	}
	return &Span{Slices: [][]byte{b[off-start : off-start+int64(n)]}, pieces: buf, n: n}, nil
}

// chunkSpan gets the checked chunks first to last holding [off, off+n). A
// read usually straddles two chunks; they are checked in parallel, so that
// neighbouring read-ahead requests, which share chunks, do not queue
// behind each other's first one.
func (f *File) chunkSpan(off int64, n int, first, last int) (*Span, error) {
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
