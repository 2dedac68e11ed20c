//go:build !libdeflate || !cgo

package codec

const backend = "klauspost/compress"

// inflateC is libdeflate's fast path, absent from this build: Zlib and
// Deflate always take the pure Go path.
func inflateC(dst, src []byte, zlib bool) (n int, ok bool) { return 0, false }

// prefixC is libdeflate's prefix decode, absent from this build.
func prefixC(dst, src []byte, zlib bool) (ok, tried bool) { return false, false }
