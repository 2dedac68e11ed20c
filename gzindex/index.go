package gzindex

import (
	"io"
	"sort"
)

// Index locates checkpoints in a gzip stream: places where decoding can
// start without decoding anything before. It is immutable once built or
// unmarshalled, so any number of Readers may share it.
type Index struct {
	compressed int64 // size of the gzip stream
	size       int64 // decompressed size
	span       int64 // checkpoint spacing after any thinning
	members    int64
	end        int64    // compressed offset just after the last member
	ident      identity // the stream this index belongs to
	cps        []checkpoint
	warnings   []string
	raw        bool // one raw deflate stream, not gzip members
	// A split index loaded by Load: its windows' bytes, windows long,
	// read when needed.
	src     io.ReaderAt
	windows int64
}

// checkpoint is a resumable decoder state. in is a bit offset, because
// checkpoints fall between two symbols; hdr is the bit offset of the header
// of the block that encloses in, or -1 when in is itself a block header.
// window holds the output that precedes out inside the same gzip member
// (at most 32 KiB), deflate-compressed when that made it smaller.
type checkpoint struct {
	in, out int64
	hdr     int64
	wlen    int // length of the window once decompressed
	packed  bool
	window  []byte
	// In a split index loaded by Load, window is nil and the window is
	// wn bytes at woff in the Index's src, with CRC-32C wsum.
	woff int64
	wn   int
	wsum uint32
}

// Size returns the decompressed size of the whole stream: the sum of its
// members' sizes.
func (ix *Index) Size() int64 { return ix.size }

// CompressedSize returns the size of the gzip stream the index describes.
func (ix *Index) CompressedSize() int64 { return ix.compressed }

// Span returns the largest distance between consecutive checkpoints, in
// decompressed and in compressed bytes, give or take a match (258 bytes)
// and a block header. It is the span given to Build, doubled once per
// thinning of the checkpoints, so it bounds the decoding work of any read:
// a read decodes at most a span before the bytes it returns.
func (ix *Index) Span() int64 { return ix.span }

// Raw reports whether the index is of a raw deflate stream (built with
// Options.Raw) rather than of gzip members.
func (ix *Index) Raw() bool { return ix.raw }

// Checkpoints returns the number of checkpoints.
func (ix *Index) Checkpoints() int { return len(ix.cps) }

// Members returns the number of gzip members in the stream.
func (ix *Index) Members() int64 { return ix.members }

// Warnings returns what Build tolerated, such as zero padding after the
// last member.
func (ix *Index) Warnings() []string { return append([]string(nil), ix.warnings...) }

// find returns the checkpoint to start from for decompressed offset off:
// the last one at or before it. Of several at the same offset (empty
// members in between), the last is nearest to the data.
func (ix *Index) find(off int64) *checkpoint {
	i := sort.Search(len(ix.cps), func(i int) bool { return ix.cps[i].out > off })
	return &ix.cps[max(i-1, 0)]
}
