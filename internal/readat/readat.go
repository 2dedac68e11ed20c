// Package readat reads exact byte ranges from an io.ReaderAt.
//
// io.ReaderAt lets a reader return fewer bytes than asked together with
// io.EOF, or (rarely, but legally) with a nil error. Code that parses a
// structure at a known offset wants all of its bytes or an error, so
// every format package used to carry its own copy of the same few lines;
// this is the one they share.
package readat

import (
	"fmt"
	"io"
)

// Full reads exactly len(p) bytes at off. When r returns all of them, an
// error that came with them (io.EOF at the end of the source) is dropped.
// When it returns fewer, the error is r's own, or, if r had none or only
// io.EOF, a *ShortError, which errors.Is reports as io.ErrUnexpectedEOF.
// Callers wrap the error with what they were reading and where.
func Full(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return &ShortError{Got: n, Want: len(p)}
	}
	return err
}

// ShortError is a read that ended early without an error of its own: the
// source is shorter than its caller believed (a truncated file, or a
// pointer past its end). It keeps the counts so that messages can say how
// much was there.
type ShortError struct{ Got, Want int }

func (e *ShortError) Error() string {
	return fmt.Sprintf("unexpected EOF: got %d of %d bytes", e.Got, e.Want)
}

// Unwrap makes a short read io.ErrUnexpectedEOF, as io.ReadFull has it.
func (e *ShortError) Unwrap() error { return io.ErrUnexpectedEOF }
