//go:build !libdeflate || !cgo

package codec

const backend = "klauspost/compress"

// inflateC is libdeflate's fast path, absent from this build: Zlib and
// Deflate always take the pure Go path.
func inflateC(dst, src []byte, zlib bool) (n int, ok bool) { return 0, false }
