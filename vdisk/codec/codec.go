// Package codec decompresses whole disk units (VMDK grains, QCOW2
// clusters) into caller-provided buffers with pooled decoders.
//
// Building a decoder per unit costs more than the inflate itself (allocation
// dominates: reusing a decoder through Reset is about 2.5x faster), so every
// decoder here lives in a sync.Pool and is Reset onto each input.
//
// Every function stops at len(dst): hostile input can never make it write or
// allocate more than the caller's buffer. Whether more output than that is
// an error is the caller's decision, so it is reported as ErrOverflow.
//
// Built with the libdeflate tag (and cgo), Zlib and Deflate first try
// libdeflate, which inflates disk units 2.5-4x faster, and keep its
// result only when it decoded a whole stream: everything else goes through
// the Go path, so errors and partial output stay the same (see inflateC in
// libdeflate.go for the malformed streams only libdeflate accepts).
package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// ErrOverflow means the stream holds more output than the destination
// buffer. The first len(dst) bytes were still written.
var ErrOverflow = errors.New("codec: output larger than the unit")

// ErrShort means the stream ended before filling the destination.
var ErrShort = errors.New("codec: output shorter than the unit")

// Backend names the inflater behind Zlib and Deflate, "libdeflate 1.14" or
// "klauspost/compress", for logs and benchmark output: read speeds of
// compressed disks depend on it.
func Backend() string { return backend }

// readerPool holds *bytes.Reader: klauspost's inflate has a fast path for
// that exact type (and a few others) and falls back to a generic, much
// slower one for any other io.ByteReader, wrappers included.
var readerPool = sync.Pool{New: func() any { return new(bytes.Reader) }}

var zlibPool sync.Pool // io.ReadCloser implementing zlib.Resetter

// Zlib inflates an RFC 1950 stream (VMDK grains) into dst and verifies its
// Adler-32. It returns the number of bytes written. n < len(dst) comes with
// ErrShort, and a stream with more data than dst with ErrOverflow.
func Zlib(dst, src []byte) (int, error) {
	if n, ok := inflateC(dst, src, true); ok {
		return n, short(n, len(dst))
	}
	return goZlib(dst, src)
}

// goZlib is Zlib in pure Go: the whole implementation without the
// libdeflate tag, and the one that decides every error with it.
func goZlib(dst, src []byte) (int, error) {
	return decideFresh(dst, src, func(dst, src []byte, pooled bool) (int, error) { return zlibOnce(dst, src, pooled, true) })
}

// decideFresh decodes with a pooled decoder and, if that fails, again with
// a fresh one, whose answer stands. klauspost/compress keeps a decoder's
// Huffman table memory across Reset without clearing it, so on a malformed
// stream (an incomplete code) a pooled decoder can read entries left by
// an earlier unit: the same damaged unit then gave "corrupt input" on one
// call and "unexpected length code" or a short unit on the next. What a
// damaged unit decodes to must not depend on what was decoded before it;
// valid streams rebuild every entry they use, so they keep the fast path.
func decideFresh(dst, src []byte, once func(dst, src []byte, pooled bool) (int, error)) (int, error) {
	n, err := once(dst, src, true)
	if err != nil {
		return once(dst, src, false)
	}
	return n, nil
}

// zlibOnce is one zlib decode, with a pooled decoder or a fresh one (which
// is not pooled afterwards). With probe it decodes the whole stream (see
// fill); without, it stops once dst is full (a prefix, see ZlibPrefix).
func zlibOnce(dst, src []byte, pooled, probe bool) (int, error) {
	br := readerPool.Get().(*bytes.Reader)
	defer readerPool.Put(br)
	br.Reset(src)

	var zr io.ReadCloser
	if v := zlibPool.Get(); pooled && v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			zlibPool.Put(zr)
			return 0, fmt.Errorf("zlib header: %w", err)
		}
	} else {
		if v != nil {
			zlibPool.Put(v)
		}
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return 0, fmt.Errorf("zlib header: %w", err)
		}
	}
	n, err := fill(zr, dst, probe)
	if pooled {
		zlibPool.Put(zr)
	}
	return n, err
}

var flatePool sync.Pool // io.ReadCloser implementing flate.Resetter

// Deflate inflates a raw RFC 1951 stream (QCOW2 zlib clusters) into dst.
// Trailing bytes after the end of the stream are ignored, because a QCOW2
// span is sector-granular and may run into the next cluster's data.
func Deflate(dst, src []byte) (int, error) {
	if n, ok := inflateC(dst, src, false); ok {
		return n, short(n, len(dst))
	}
	return goDeflate(dst, src)
}

// goDeflate is Deflate in pure Go, as goZlib is Zlib.
func goDeflate(dst, src []byte) (int, error) {
	return decideFresh(dst, src, func(dst, src []byte, pooled bool) (int, error) { return deflateOnce(dst, src, pooled, true) })
}

// deflateOnce is one raw deflate decode, as zlibOnce.
func deflateOnce(dst, src []byte, pooled, probe bool) (int, error) {
	br := readerPool.Get().(*bytes.Reader)
	defer readerPool.Put(br)
	br.Reset(src)

	var fr io.ReadCloser
	if v := flatePool.Get(); pooled && v != nil {
		fr = v.(io.ReadCloser)
		if err := fr.(flate.Resetter).Reset(br, nil); err != nil {
			flatePool.Put(fr)
			return 0, err
		}
	} else {
		if v != nil {
			flatePool.Put(v)
		}
		fr = flate.NewReader(br)
	}
	n, err := fill(fr, dst, probe)
	if pooled {
		flatePool.Put(fr)
	}
	return n, err
}

// zstdMaxWindow bounds the memory one hostile frame header can make the
// decoder reserve. Disk units are at most 2 MiB, so no genuine frame needs a
// larger window.
const zstdMaxWindow = 8 << 20

var zstdPool = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1), // synchronous: no goroutine per stream
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderMaxMemory(64<<20),
	)
	if err != nil {
		return err
	}
	return d
}}

// Zstd decodes one or more concatenated zstd frames (QCOW2 zstd clusters)
// into dst. Decoding stops once dst is full, because QCOW2 spans carry bytes
// after the last frame.
func Zstd(dst, src []byte) (int, error) {
	v := zstdPool.Get()
	d, ok := v.(*zstd.Decoder)
	if !ok {
		return 0, fmt.Errorf("zstd: %v", v)
	}
	defer zstdPool.Put(d)
	br := readerPool.Get().(*bytes.Reader)
	defer readerPool.Put(br)
	br.Reset(src)
	if err := d.Reset(br); err != nil {
		return 0, err
	}
	// Stop at len(dst) without probing for more: trailing bytes after a
	// QCOW2 zstd frame are normal and are not a frame.
	return fill(d, dst, false)
}

// fill reads exactly len(dst) bytes from r. With probe, it then reads once
// more, which both verifies a trailing checksum and detects extra output.
func fill(r io.Reader, dst []byte, probe bool) (int, error) {
	n, err := io.ReadFull(r, dst)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return n, short(n, len(dst))
	case err != nil:
		return n, err
	}
	if !probe {
		return n, nil
	}
	var one [1]byte
	m, err := r.Read(one[:])
	for m == 0 && err == nil {
		m, err = r.Read(one[:])
	}
	if m > 0 {
		return n, ErrOverflow
	}
	if err != io.EOF {
		return n, err
	}
	return n, nil
}

// short is the error for a stream that ended after n of want bytes: nil
// when n == want, so both inflaters report a short unit the same way.
func short(n, want int) error {
	if n == want {
		return nil
	}
	return fmt.Errorf("%w: %d of %d bytes", ErrShort, n, want)
}
