// Package route says how the bytes of one read are served, so that the
// layer that owns the data decides it and the FUSE layer only carries the
// answer out: ranges of host files the kernel can splice without a copy,
// buffers that were already read (and checked, where checks apply), or
// bytes copied into the caller's buffer.
//
// A [Reply] is built by the layer that knows: an archive member knows
// where its bytes lie in the archive file, a verified file knows whether
// its bytes must be checked first, a disk image knows which of its runs
// are stored verbatim, holes or compressed. [Ranges] asks a reader for the
// host ranges of a piece of it, following section readers down to the
// reader that owns the bytes; a reader that must see its bytes first (to
// check or decode them) answers no.
package route

import (
	"context"
	"io"
)

// Range is a piece of a reply: Len bytes of a host file at Off, or, with
// Zero set, Len zero bytes.
type Range struct {
	FD   uintptr
	Off  int64
	Len  int
	Zero bool
}

// Reply is how one read is answered. Exactly one of Ranges and Bufs is
// used: Ranges to be spliced from host files, or Bufs, written out as they
// are. Release must be called once the reply is sent (or dropped).
type Reply struct {
	Ranges  []Range
	Bufs    [][]byte
	n       int
	release func()
}

// Bytes answers with b.
func Bytes(b []byte) Reply { return Reply{Bufs: [][]byte{b}, n: len(b)} }

// Spliced answers with host file ranges (and zeros).
func Spliced(ranges []Range) Reply {
	n := 0
	for _, r := range ranges {
		n += r.Len
	}
	return Reply{Ranges: ranges, n: n}
}

// Held answers with buffers that stay valid until release is called:
// checked chunks, say, sent as they are rather than copied.
func Held(bufs [][]byte, release func()) Reply {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return Reply{Bufs: bufs, n: n, release: release}
}

// Len is the number of bytes the reply holds.
func (r *Reply) Len() int { return r.n }

// Release lets go of held buffers; calling it again does nothing.
func (r *Reply) Release() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// CopyTo copies the reply's buffers into p, which must hold Len bytes, and
// releases them. It is for callers that need the bytes in one piece; it
// cannot copy Ranges and returns false for them.
func (r *Reply) CopyTo(p []byte) bool {
	defer r.Release()
	if r.Ranges != nil {
		return false
	}
	at := 0
	for _, b := range r.Bufs {
		at += copy(p[at:], b)
	}
	return true
}

// Ranger is implemented by readers whose bytes may be sent to the kernel
// straight from host files.
type Ranger interface {
	// HostRanges returns the host file ranges holding [off, off+n), or
	// false when the bytes must be read first: they are not in a host file
	// in one piece, must be checked, or are past what the reader holds.
	HostRanges(off int64, n int) ([]Range, bool)
}

// Ranges returns the host file ranges holding [off, off+n) of r, looking
// through section readers (a format's view of an extent, say) down to the
// reader that owns the bytes. False means the bytes must be read.
func Ranges(r io.ReaderAt, off int64, n int) ([]Range, bool) {
	for {
		sr, ok := r.(*io.SectionReader)
		if !ok {
			break
		}
		outer, base, size := sr.Outer()
		if off < 0 || off+int64(n) > size {
			return nil, false
		}
		r, off = outer, base+off
	}
	if rg, ok := r.(Ranger); ok {
		return rg.HostRanges(off, n)
	}
	return nil, false
}

// ContextReaderAt is implemented by readers whose reads may wait (for a
// file to be verified, for a remote server), so that an interrupted read
// stops waiting.
type ContextReaderAt interface {
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// ReadAt reads from r with ctx when r takes one.
func ReadAt(ctx context.Context, r io.ReaderAt, p []byte, off int64) (int, error) {
	if cr, ok := r.(ContextReaderAt); ok {
		return cr.ReadAtContext(ctx, p, off)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return r.ReadAt(p, off)
}

// Prover is implemented by readers that can say whether the bytes they
// serve are proven: checked, before they are returned, against digests
// that the package's manifest vouches for (a verified member read through
// its chunk table). A disk decoder may then skip its own checks on them
// (a grain's Adler-32 adds nothing to a verified member), or defer them.
type Prover interface {
	// Proven reports whether every read from now on is checked so.
	Proven() bool
}

// Proven reports whether r, looked at through section readers, is a
// Prover that says its bytes are proven. Any other reader's are not.
func Proven(r io.ReaderAt) bool {
	for {
		sr, ok := r.(*io.SectionReader)
		if !ok {
			break
		}
		r, _, _ = sr.Outer()
	}
	p, ok := r.(Prover)
	return ok && p.Proven()
}
