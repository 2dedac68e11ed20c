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
	"runtime"
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
