// Package blockmap is the contract between a disk-image format and the
// shared read path in package vdisk.
//
// A format does not read virtual bytes itself. It only answers one
// question: for a virtual offset, where do the bytes live? The answer is a
// [Run]: a hole, an explicit zero range, bytes stored verbatim somewhere in a
// source, or a slice of a compressed unit that the format knows how to
// decode. Everything else (coalescing contiguous stored runs, the
// decompressed-unit cache, singleflight, read-ahead, SEEK_DATA/SEEK_HOLE)
// is done once, in vdisk, for every format.
//
// Formats keep this package free of I/O policy: a Mapper may read its own
// metadata (tables) from its source, but never decodes data for a reader.
package blockmap

import (
	"context"
	"errors"
	"io"

	"github.com/ovfmount/ovfmount/route"
)

// Kind says how a run of virtual bytes is stored.
type Kind uint8

const (
	// Hole is an unallocated range. It reads as zeros and is a hole for
	// SEEK_HOLE and st_blocks.
	Hole Kind = iota
	// Zero is a range the image marks explicitly as zeros (a VMDK zeroed
	// grain, a QCOW2 zero cluster, a VHDX zero block). It reads as zeros
	// and, like Hole, holds no data.
	Zero
	// Stored bytes sit verbatim at Run.Phys in Run.Src.
	Stored
	// Compressed bytes are part of Run.Unit, which Unit.Dec decodes.
	Compressed
)

func (k Kind) String() string {
	switch k {
	case Hole:
		return "hole"
	case Zero:
		return "zero"
	case Stored:
		return "stored"
	case Compressed:
		return "compressed"
	}
	return "invalid"
}

// HasData reports whether the kind carries data, as SEEK_DATA sees it.
func (k Kind) HasData() bool { return k == Stored || k == Compressed }

// Run is a range of virtual bytes [Off, Off+Len) stored one way.
type Run struct {
	Off  int64
	Len  int64
	Kind Kind

	// Src and Phys locate a Stored run: virtual byte Off is at Src offset
	// Phys. Bytes past the end of Src read as zeros, as in qemu, because
	// some writers leave the last cluster short.
	Src  io.ReaderAt
	Phys int64

	// Unit is the compressed unit of a Compressed run. Off lies inside
	// [Unit.Off, Unit.Off+Unit.Size).
	Unit Unit
}

// End is the virtual offset just past the run.
func (r Run) End() int64 { return r.Off + r.Len }

// Unit is one independently compressed block: a VMDK grain or a QCOW2
// cluster. The shared cache keys decoded units by (Dec, ID), so Dec must be
// a comparable value (a pointer) and ID unique within it.
type Unit struct {
	Dec  Decoder
	ID   int64 // unique within Dec; usually the stored offset of the record
	Off  int64 // virtual offset of the unit's first decoded byte
	Size int   // decoded size in bytes (a full grain or cluster)
	Phys int64 // stored offset of the compressed record
	Span int64 // stored bytes the record may occupy (an upper bound)
}

// Decoder turns a compressed unit into its bytes.
type Decoder interface {
	// DecodeUnit fills dst, whose length is u.Size, with the decoded unit.
	// It must fail, never return garbage, when the record is damaged:
	// wrong framing, short output, or more output than u.Size where the
	// format forbids it. It reads the record with ReadAtContext (or
	// through WithContext) under ctx, the context of the read that wants
	// the unit, so that an interrupted read stops waiting for its source.
	DecodeUnit(ctx context.Context, dst []byte, u Unit) error
}

// PrefixDecoder is a Decoder that can decode the head of a unit alone, for
// a read that wants only its first bytes, when stopping early is safe.
type PrefixDecoder interface {
	Decoder
	// CanPrefix reports, cheaply and before any work is queued, whether
	// DecodePrefix may decode heads now (the source is proven, the codec
	// can stop early); false means every unit is decoded whole.
	CanPrefix() bool
	// DecodePrefix fills dst with the first len(dst) bytes of u (len(dst)
	// < u.Size) and decodes nothing after them. It may do so only where
	// skipping the rest of the unit skips no check the bytes depend on:
	// when the source's bytes are proven (route.Proven), so that neither a
	// checksum over the whole unit (a VMDK grain's Adler-32) nor a whole
	// decode's failure (a raw deflate stream that runs past its record)
	// can tell more about them. ok=false with a nil error means "not for this
	// unit: decode it whole" (an unproven source, zstd, or a stream the
	// codec cannot stop cheaply). The record's framing is checked as
	// DecodeUnit checks it, and its failures returned the same way, before
	// any byte is written. A unit served so is decoded whole later, and
	// that decode is what finds damage past the prefix.
	DecodePrefix(ctx context.Context, dst []byte, u Unit) (ok bool, err error)
}

// Mapper is what a format exposes. It must be safe for concurrent use.
type Mapper interface {
	// Size is the virtual disk size in bytes.
	Size() int64
	// Map returns the run containing off, for 0 <= off < Size(). The run
	// may begin before off and must not end past Size(). Long runs make
	// reads and hole-seeking cheap, so a format should return a whole
	// unallocated table as one Hole rather than one grain at a time.
	Map(off int64) (Run, error)
}

// Errors shared by the formats, so callers can classify failures without
// knowing the format. Formats wrap them with the precise cause.
var (
	// ErrCorrupt: the image's structures are invalid or inconsistent.
	ErrCorrupt = errors.New("corrupt disk image")
	// ErrUnsupported: a valid image uses a feature that cannot be served
	// read-only from inside an archive (a parent or backing file,
	// encryption, an unknown incompatible feature).
	ErrUnsupported = errors.New("unsupported disk image feature")
)

// ReadAt reads virtual bytes through m without any caching. It is the
// reference semantics the shared read path must match, and the simplest
// way for a format's tests to check a Mapper against an oracle.
func ReadAt(m Mapper, p []byte, off int64) (int, error) {
	size := m.Size()
	if off < 0 {
		return 0, errors.New("blockmap: negative offset")
	}
	if off >= size {
		return 0, io.EOF
	}
	want := p
	if int64(len(want)) > size-off {
		want = want[:size-off]
	}
	done := 0
	var unitBuf []byte
	for done < len(want) {
		pos := off + int64(done)
		r, err := m.Map(pos)
		if err != nil {
			return done, err
		}
		if err := r.check(pos, size); err != nil {
			return done, err
		}
		n := int(min(r.End()-pos, int64(len(want)-done)))
		dst := want[done : done+n]
		switch r.Kind {
		case Hole, Zero:
			clear(dst)
		case Stored:
			if err := ReadStored(context.Background(), r.Src, dst, r.Phys+(pos-r.Off)); err != nil {
				return done, err
			}
		case Compressed:
			if cap(unitBuf) < r.Unit.Size {
				unitBuf = make([]byte, r.Unit.Size)
			}
			ub := unitBuf[:r.Unit.Size]
			if err := r.Unit.Dec.DecodeUnit(context.Background(), ub, r.Unit); err != nil {
				return done, err
			}
			copy(dst, ub[pos-r.Unit.Off:])
		}
		done += n
	}
	if len(want) < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// check rejects a run that breaks the Mapper contract, so a buggy or
// confused format fails loudly instead of looping or reading garbage.
func (r Run) check(pos, size int64) error {
	if r.Len <= 0 || r.Off > pos || r.End() <= pos || r.End() > size {
		return errors.New("blockmap: mapper returned a run that does not cover the offset")
	}
	if r.Kind == Compressed {
		u := r.Unit
		if u.Dec == nil || u.Size <= 0 || r.Off < u.Off || r.End() > u.Off+int64(u.Size) {
			return errors.New("blockmap: compressed run outside its unit")
		}
	}
	if r.Kind == Stored && r.Src == nil {
		return errors.New("blockmap: stored run without a source")
	}
	return nil
}

// Check validates r as the answer to Map(pos) on an image of the given
// size. The shared read path calls it on every run.
func (r Run) Check(pos, size int64) error { return r.check(pos, size) }

// ReadStored fills dst from src at off, under ctx (see ReadAtContext).
// Bytes past the end of src read as zeros (qemu does the same for a short
// last cluster); any other error is returned.
func ReadStored(ctx context.Context, src io.ReaderAt, dst []byte, off int64) error {
	n, err := route.ReadAt(ctx, src, dst, off)
	if err == io.EOF || (err == nil && n < len(dst)) {
		clear(dst[n:])
		return nil
	}
	return err
}

// WithContext binds src's reads to ctx, for code written against
// io.ReaderAt (such as a read-exactly helper). The result is meant to live
// as long as one read.
func WithContext(ctx context.Context, src io.ReaderAt) io.ReaderAt {
	return ctxReaderAt{ctx, src}
}

type ctxReaderAt struct {
	ctx context.Context
	src io.ReaderAt
}

func (r ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	return route.ReadAt(r.ctx, r.src, p, off)
}
