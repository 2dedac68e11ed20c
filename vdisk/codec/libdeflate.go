//go:build libdeflate && cgo

package codec

// libdeflate is linked statically (the archive, not the .so), so a binary
// built with the tag runs where libdeflate is not installed.

/*
#cgo LDFLAGS: -l:libdeflate.a
#include <libdeflate.h>
*/
import "C"

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"sync"
	"unsafe"
)

var backend = "libdeflate " + C.LIBDEFLATE_VERSION_STRING

// decompressors is a bounded free-list of libdeflate decompressors (C
// memory, one per concurrent inflate: they are not thread-safe). A sync.Pool would drop idle ones for the GC, which cannot
// free C memory; here the ones that do not fit are freed explicitly.
var decompressors = make(chan *C.struct_libdeflate_decompressor, 2*runtime.GOMAXPROCS(0))

// inflateC inflates src into dst with libdeflate, as a zlib stream or raw
// deflate. It reports ok only when libdeflate decoded a whole stream that
// fits in dst (trailing input ignored), so that n, dst[:n] and the caller's
// error follow from n alone. Every failure, including overflow, is left to
// the Go path, which the rare error cases can afford and whose partial
// output and errors callers rely on.
//
// libdeflate is laxer than zlib and Go in a few places: it decodes length
// symbols 286 and 287 (as 258), distance symbols 30 and 31, and the unused
// codeword of a Huffman code with one codeword or none. Only crafted
// streams use them (a zlib one must still match its Adler-32); for those,
// Zlib and Deflate return output, bounded by dst, where the Go path reports
// corrupt data. TestLibdeflateLeniency pins one.
func inflateC(dst, src []byte, zlib bool) (n int, ok bool) {
	if len(dst) == 0 || len(src) == 0 {
		return 0, false
	}
	var d *C.struct_libdeflate_decompressor
	select {
	case d = <-decompressors:
	default:
		if d = C.libdeflate_alloc_decompressor(); d == nil {
			return 0, false
		}
	}
	in, inLen := unsafe.Pointer(&src[0]), C.size_t(len(src))
	out, outLen := unsafe.Pointer(&dst[0]), C.size_t(len(dst))
	var written C.size_t
	var r C.enum_libdeflate_result
	if zlib {
		r = C.libdeflate_zlib_decompress_ex(d, in, inLen, out, outLen, nil, &written)
	} else {
		r = C.libdeflate_deflate_decompress_ex(d, in, inLen, out, outLen, nil, &written)
	}
	select {
	case decompressors <- d:
	default:
		C.libdeflate_free_decompressor(d)
	}
	if r != C.LIBDEFLATE_SUCCESS {
		return 0, false
	}
	return int(written), true
}

// prefixSlack is the room past the prefix that prefixC gives libdeflate,
// and sentinelAt where in it the sentinel lies (see prefixC).
const (
	prefixSlack = 512
	sentinelAt  = 256
)

// scratchPool holds prefixC's output buffers (*[]byte).
var scratchPool sync.Pool

// prefixC decodes the first len(dst) bytes of a zlib or raw deflate stream
// with libdeflate, which has no partial API: it is asked to decode into a
// scratch buffer of len(dst)+prefixSlack bytes and stops, with
// LIBDEFLATE_INSUFFICIENT_SPACE, once that is full. tried=false hands the
// unit to the Go path (the stream may simply start with a stored block too
// large for the room); tried=true with ok=false means the stream is bad.
//
// Why the bytes are right (libdeflate 1.14, lib/decompress_template.h, and
// every release since, which keep this structure). Decoding writes the
// stream's output in order at out_next; every byte below out_next is final
// output, even where the fastloop's word-at-a-time match copy wrote garbage
// past out_next first. Bytes past out_next are only ever written (a)
// exactly, by literals, generic-loop matches and stored-block memcpy, or
// (b) by that over-copy, which ends less than 40 bytes (5 words) past the
// out_next of the match that made it; the fastloop only runs while
// FASTLOOP_MAX_BYTES_WRITTEN bytes remain, so nothing is written past the
// buffer. libdeflate returns INSUFFICIENT_SPACE in three places: a literal
// with out_next at the end (out_next = len(dst)+slack), a generic-loop
// match longer than the room left (so out_next > len(dst)+slack-258), and a
// stored block whose length exceeds the room left, checked before anything
// is copied: out_next may then be anywhere, even before len(dst), and its
// value is not returned (actual_out is set only on success). So a random
// 8-byte sentinel is written at [len(dst)+256, len(dst)+264) before the
// call: a byte of it that changed was written, so out_next passed
// len(dst)+256-40 > len(dst) and the prefix is final output. An intact
// sentinel (a stored block, or output that by chance rewrote the same
// bytes) proves nothing: then the Go path decodes the prefix. On success
// actual_out says where the stream ended; the prefix needs it to reach
// len(dst). A zlib stream is inflated as raw deflate after its header, so
// its Adler-32 is never read. BAD_DATA goes to the Go path, which decodes
// no further than the prefix, so both builds answer alike on valid
// streams and on streams damaged past the prefix.
//
// As in a whole decode, a malformed stream may decode further under
// libdeflate than under Go (see inflateC), and a truncated one decodes up
// to 8 phantom zero bytes past the end of src before libdeflate notices: only the
// whole decode, which follows for every unit served this way, rejects
// such a stream.
func prefixC(dst, src []byte, zlib bool) (ok, tried bool) {
	if zlib {
		// libdeflate's zlib wrapper hands all but the last 4 bytes (the
		// Adler-32) to the inflater, which reads zeros past its input: a
		// stream cut short would decode zeros where its last real bytes
		// are, and differ from Go before Go's output ends. So check the
		// header as libdeflate does and inflate the rest, trailer and all.
		if len(src) < 6 {
			return false, false
		}
		hdr := uint(src[0])<<8 | uint(src[1])
		if hdr%31 != 0 || hdr>>8&0xf != 8 || hdr>>12 > 7 || hdr>>5&1 != 0 {
			return false, false
		}
		src = src[2:]
	}
	if len(src) == 0 {
		return false, true
	}
	need := len(dst) + prefixSlack
	bp, _ := scratchPool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if cap(*bp) < need {
		*bp = make([]byte, need)
	}
	scratch := (*bp)[:need]
	defer scratchPool.Put(bp)
	sentinel := rand.Uint64()
	binary.LittleEndian.PutUint64(scratch[len(dst)+sentinelAt:], sentinel)

	var d *C.struct_libdeflate_decompressor
	select {
	case d = <-decompressors:
	default:
		if d = C.libdeflate_alloc_decompressor(); d == nil {
			return false, false
		}
	}
	in, inLen := unsafe.Pointer(&src[0]), C.size_t(len(src))
	out, outLen := unsafe.Pointer(&scratch[0]), C.size_t(need)
	var written C.size_t
	r := C.libdeflate_deflate_decompress_ex(d, in, inLen, out, outLen, nil, &written)
	select {
	case decompressors <- d:
	default:
		C.libdeflate_free_decompressor(d)
	}
	switch r {
	case C.LIBDEFLATE_SUCCESS:
		if int(written) < len(dst) {
			return false, true // the stream ends before the prefix
		}
	case C.LIBDEFLATE_INSUFFICIENT_SPACE:
		if binary.LittleEndian.Uint64(scratch[len(dst)+sentinelAt:]) == sentinel {
			return false, false
		}
	default:
		// BAD_DATA: perhaps only the Adler-32 (see above), or damage past
		// the prefix that Go, decoding no further than it, never meets.
		return false, false
	}
	copy(dst, scratch)
	return true, true
}
