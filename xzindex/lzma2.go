package xzindex

import (
	"github.com/ulikunitz/xz/lzma"
)

// lzma2Decoder decodes one block's raw LZMA2 data, read from a section.
// Two implement it: the Go decoder of github.com/ulikunitz/xz, always
// built, and liblzma's, built with -tags=liblzma where cgo and liblzma-dev
// are installed (liblzma.go), which decodes 1.8x faster (29 MB/s against
// 16, the speed of xz -d, on the bench's .ova.xz: LZMA2 over a
// streamOptimized VMDK's deflate data); a cold random read decodes its
// block from the start, so that speed is its latency.
type lzma2Decoder interface {
	// Read yields decompressed bytes, and io.EOF once the LZMA2 end
	// marker has been read and everything before it handed out.
	Read(p []byte) (int, error)
	// EOS reports whether the end marker has been read.
	EOS() bool
}

// lzma2Func returns a decoder of src with a dictionary of dict bytes. old
// is a decoder an earlier call of the same function returned and that is
// no longer used, or nil; it may be reset and returned.
type lzma2Func func(src *section, dict int, old lzma2Decoder) (lzma2Decoder, error)

// goLZMA2 is the Go decoder. It allocates its dictionary anew for each
// block: lzma.Reader2 has no reset.
func goLZMA2(src *section, dict int, _ lzma2Decoder) (lzma2Decoder, error) {
	return lzma.Reader2Config{DictCap: dict}.NewReader2(src)
}

// defaultLZMA2 and Backend are liblzma's where the build has it.
var (
	defaultLZMA2 lzma2Func = goLZMA2
	// Backend names the LZMA2 decoder Readers use, for logs and reports.
	Backend = "Go (github.com/ulikunitz/xz)"
)
