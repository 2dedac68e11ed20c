package xzindex

import (
	"fmt"
	"io"
	"math"

	"github.com/ovfmount/ovfmount/internal/unitread"
)

const (
	// DefaultMaxUnit is the default Options.MaxUnit: 256 MiB, above the
	// largest block xz -T0 writes at any preset (three times the
	// dictionary: 192 MiB at -9), so that multithreaded xz output always
	// opens.
	DefaultMaxUnit = 256 << 20
	// MaxDictLimit is the default and the largest Options.MaxDict: 64 MiB,
	// the dictionary of xz -9 and -9e, the largest preset.
	MaxDictLimit = 64 << 20
	// DefaultMaxUnits is the default Options.MaxUnits.
	DefaultMaxUnits = 1 << 20
	// DefaultDecoders is the default Options.Decoders; MaxDecoders the
	// largest.
	DefaultDecoders = 4
	MaxDecoders     = 16
	// DefaultCacheBytes is the default Options.CacheBytes.
	DefaultCacheBytes = 32 << 20
)

// Options bound what Open accepts and what a Reader may use. The zero
// value means the defaults.
type Options struct {
	// MaxUnit is the largest decompressed block size accepted: a cold
	// read decodes its block from the start, so up to MaxUnit bytes.
	// Larger blocks fail Open with ErrUnitTooLarge. 0 means
	// DefaultMaxUnit.
	MaxUnit int64
	// MaxDict is the largest LZMA2 dictionary a decoder allocates, which
	// is a block's dictionary size or its decompressed size, whichever is
	// smaller. Larger fail Open with ErrDictTooLarge. 0 means, and more
	// is lowered to, MaxDictLimit.
	MaxDict int64
	// MaxUnits is the most blocks Open accepts (ErrTooManyUnits), which
	// bounds the memory the block table takes (about 100 bytes a block).
	// 0 means DefaultMaxUnits.
	MaxUnits int
	// Decoders is how many decoders a Reader keeps positioned between
	// reads, each holding its dictionary and a 512 KiB buffer. 0 means
	// DefaultDecoders; at most MaxDecoders.
	Decoders int
	// CacheBytes bounds a cache of recently decoded 256 KiB pieces, which
	// serves re-reads that no decoder holds any more without decoding
	// from the unit's start again. 0 means DefaultCacheBytes; negative
	// means no cache.
	CacheBytes int

	// lzma2 is the LZMA2 decoder; nil means defaultLZMA2. Tests set it
	// to run with each.
	lzma2 lzma2Func
}

func (o *Options) fill() {
	if o.MaxUnit <= 0 {
		o.MaxUnit = DefaultMaxUnit
	}
	if o.MaxDict <= 0 || o.MaxDict > MaxDictLimit {
		o.MaxDict = MaxDictLimit
	}
	if o.MaxUnits <= 0 {
		o.MaxUnits = DefaultMaxUnits
	}
	if o.Decoders <= 0 {
		o.Decoders = DefaultDecoders
	}
	o.Decoders = min(o.Decoders, MaxDecoders)
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.lzma2 == nil {
		o.lzma2 = defaultLZMA2
	}
}

// Block describes one xz block: a unit of random access.
type Block struct {
	Stream   int   // the index of its stream in the file
	Offset   int64 // compressed offset of its header
	Unpadded int64 // header, LZMA2 data and check, without padding
	Out      int64 // decompressed offset
	Size     int64 // decompressed size
	Check    byte  // check type: 0 none, 1 CRC32, 4 CRC64, 10 SHA-256
	Dict     int64 // LZMA2 dictionary size its header announces

	header     int   // its header's size
	compressed int64 // its LZMA2 data's size
}

// Reader is an io.ReaderAt over the decompressed bytes of an xz file. It
// is safe for concurrent use.
type Reader struct {
	r       io.ReaderAt
	size    int64
	opt     Options
	streams int
	blocks  []Block
	ur      *unitread.Reader
}

// Open reads the stream footers, indexes, stream headers and block
// headers of the xz file of size bytes in r, and returns a Reader of its
// decompressed bytes. It reads none of the compressed data.
func Open(r io.ReaderAt, size int64, opt Options) (*Reader, error) {
	opt.fill()
	streams, err := readStreams(r, size, &opt)
	if err != nil {
		return nil, err
	}
	x := &Reader{r: r, size: size, opt: opt, streams: len(streams)}
	var out int64
	for si, s := range streams {
		off := s.start + streamHeaderSize
		for _, rec := range s.records {
			b := Block{Stream: si, Offset: off, Unpadded: rec.unpadded, Out: out, Size: rec.uncompressed, Check: s.check}
			i := len(x.blocks)
			if b.Size > opt.MaxUnit {
				return nil, fmt.Errorf("xzindex: block %d at offset %d decompresses to %d bytes, over the limit of %d: %w", i, off, b.Size, opt.MaxUnit, ErrUnitTooLarge)
			}
			if out > math.MaxInt64-b.Size {
				return nil, fmt.Errorf("%w: decompressed size overflows", ErrFormat)
			}
			if err := parseBlockHeader(r, &b); err != nil {
				return nil, fmt.Errorf("xzindex: block %d at offset %d: %w", i, off, err)
			}
			if need := min(b.Dict, b.Size); need > opt.MaxDict {
				return nil, fmt.Errorf("xzindex: block %d at offset %d needs a %d-byte dictionary, over the limit of %d: %w", i, off, need, opt.MaxDict, ErrDictTooLarge)
			}
			off += (rec.unpadded + 3) &^ 3
			out += b.Size
			if b.Size > 0 {
				x.blocks = append(x.blocks, b)
			}
		}
	}
	units := make([]unitread.Unit, len(x.blocks))
	for i, b := range x.blocks {
		units[i] = unitread.Unit{Off: b.Out, Len: b.Size}
	}
	x.ur = unitread.New(unitread.Config{Name: "xzindex", Units: units, Open: x.openBlock, Corrupt: ErrCorrupt, Decoders: opt.Decoders, CacheBytes: opt.CacheBytes})
	return x, nil
}

// Size returns the decompressed size.
func (x *Reader) Size() int64 { return x.ur.Size() }

// Streams returns how many xz streams the file holds.
func (x *Reader) Streams() int { return x.streams }

// Blocks returns the file's non-empty blocks in order.
func (x *Reader) Blocks() []Block { return append([]Block(nil), x.blocks...) }

// Units returns how many non-empty blocks the file holds and the largest
// one's decompressed size: what a cold read may have to decode.
func (x *Reader) Units() (count int, largest int64) {
	for _, b := range x.blocks {
		largest = max(largest, b.Size)
	}
	return len(x.blocks), largest
}

// ReadAt implements io.ReaderAt over the decompressed bytes. A read
// decodes the blocks it covers, from a block's start or from where an
// earlier read left a decoder, and verifies a block's check when it
// reaches the block's end.
func (x *Reader) ReadAt(p []byte, off int64) (int, error) { return x.ur.ReadAt(p, off) }
