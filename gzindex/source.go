package gzindex

import (
	"errors"
	"io"
)

// source reads the compressed stream through a buffer. It never reads at or
// past end, the stream size the caller declared, whatever r holds there, so
// that the same bytes are decoded whether r is a whole file or a section.
type source struct {
	r    io.ReaderAt
	end  int64
	buf  []byte
	base int64 // stream offset of buf[0]
	pos  int   // next unconsumed byte in buf
	n    int   // bytes of buf holding data
}

// errEnd is what source returns at the declared end of the stream; the
// inflater turns it into ErrTruncated with a position.
var errEnd = io.ErrUnexpectedEOF

func (s *source) reset(r io.ReaderAt, end int64) {
	s.r, s.end = r, end
	s.base, s.pos, s.n = 0, 0, 0
}

// offset is the stream offset of the next unconsumed byte.
func (s *source) offset() int64 { return s.base + int64(s.pos) }

// seek moves to stream offset off, keeping the buffer when off is inside it.
func (s *source) seek(off int64) {
	if off >= s.base && off <= s.base+int64(s.n) {
		s.pos = int(off - s.base)
		return
	}
	s.base, s.pos, s.n = off, 0, 0
}

// more appends at least one byte to the unconsumed ones, moving them to the
// front of the buffer first. It returns errEnd at the declared end, and
// also when r ends before it (the file is shorter than its declared size).
func (s *source) more() error {
	if s.pos > 0 {
		s.n = copy(s.buf, s.buf[s.pos:s.n])
		s.base += int64(s.pos)
		s.pos = 0
	}
	at := s.base + int64(s.n)
	want := int64(len(s.buf) - s.n)
	if rem := s.end - at; rem < want {
		want = rem
	}
	if want <= 0 {
		return errEnd
	}
	k, err := s.r.ReadAt(s.buf[s.n:s.n+int(want)], at)
	if k < 0 || int64(k) > want {
		return errors.New("gzindex: reader returned an impossible byte count")
	}
	s.n += k
	switch {
	case k > 0:
		return nil
	case err == nil:
		return io.ErrNoProgress
	case errors.Is(err, io.EOF):
		return errEnd
	}
	return err
}

// avail makes at least k bytes (k ≤ len(buf)) available after pos, or
// returns errEnd when the stream has fewer left.
func (s *source) avail(k int) error {
	for s.n-s.pos < k {
		if err := s.more(); err != nil {
			return err
		}
	}
	return nil
}

// bytesAt is an in-memory io.ReaderAt, used to decode the stored windows
// with the same inflater as the stream.
type bytesAt []byte

func (b bytesAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
