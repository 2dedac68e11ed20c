package xzindex

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

const (
	filterLZMA2 = 0x21
	// minDict is the smallest dictionary the LZMA2 decoder accepts.
	minDict = lzma.MinDictCap
)

var crc64Table = crc64.MakeTable(crc64.ECMA)

// filterNames names the filter ids xz defines, for errors.
var filterNames = map[int64]string{
	0x03: "delta", 0x04: "BCJ x86", 0x05: "BCJ PowerPC", 0x06: "BCJ IA-64",
	0x07: "BCJ ARM", 0x08: "BCJ ARM-Thumb", 0x09: "BCJ SPARC", 0x0a: "BCJ ARM64",
	0x0b: "BCJ RISC-V", 0x21: "LZMA2",
}

// parseBlockHeader reads the header of block b (whose Offset, Unpadded,
// Size and Check are set) and fills in the rest of it.
func parseBlockHeader(r io.ReaderAt, b *Block) error {
	var first [1]byte
	if _, err := r.ReadAt(first[:], b.Offset); err != nil {
		return fmt.Errorf("reading the block header: %w", err)
	}
	if first[0] == 0 {
		return fmt.Errorf("%w: an index indicator where the index puts a block", ErrFormat)
	}
	hsize := (int64(first[0]) + 1) * 4
	cs := int64(checkSize[b.Check])
	b.compressed = b.Unpadded - hsize - cs
	if b.compressed <= 0 {
		return fmt.Errorf("%w: a %d-byte block header does not fit the block's unpadded size %d", ErrFormat, hsize, b.Unpadded)
	}
	h := make([]byte, hsize)
	if _, err := r.ReadAt(h, b.Offset); err != nil {
		return fmt.Errorf("reading the block header: %w", err)
	}
	if crc32.ChecksumIEEE(h[:hsize-4]) != binary.LittleEndian.Uint32(h[hsize-4:]) {
		return fmt.Errorf("block header: %w", ErrChecksum)
	}
	b.header = int(hsize)
	flags := h[1]
	if flags&0x3c != 0 {
		return fmt.Errorf("%w: reserved block flags set (%#x)", ErrFormat, flags)
	}
	body := bytes.NewReader(h[2 : hsize-4])
	next := func() (byte, error) {
		c, err := body.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("%w: block header overruns its size", ErrFormat)
		}
		return c, nil
	}
	vint := func() (int64, error) { return readVarint(next, "block header") }
	if flags&0x40 != 0 {
		v, err := vint()
		if err != nil {
			return err
		}
		if v != b.compressed {
			return fmt.Errorf("%w: block header says %d compressed bytes, the index %d", ErrFormat, v, b.compressed)
		}
	}
	if flags&0x80 != 0 {
		v, err := vint()
		if err != nil {
			return err
		}
		if v != b.Size {
			return fmt.Errorf("%w: block header says %d uncompressed bytes, the index %d", ErrFormat, v, b.Size)
		}
	}
	nf := int(flags&3) + 1
	for i := 0; i < nf; i++ {
		id, err := vint()
		if err != nil {
			return err
		}
		psize, err := vint()
		if err != nil {
			return err
		}
		if psize > int64(body.Len()) {
			return fmt.Errorf("%w: filter properties overrun the block header", ErrFormat)
		}
		props := make([]byte, psize)
		body.Read(props)
		if id != filterLZMA2 || i != nf-1 {
			name := filterNames[id]
			if name == "" {
				name = "unknown"
			}
			return fmt.Errorf("%w: filter %#x (%s) in a chain of %d; only LZMA2 alone is supported (recompress without --filters/--x86/--delta)", ErrUnsupported, id, name, nf)
		}
		if psize != 1 || props[0]&0xc0 != 0 || props[0] > 40 {
			return fmt.Errorf("%w: invalid LZMA2 properties % x", ErrFormat, props)
		}
		if props[0] == 40 {
			b.Dict = 1<<32 - 1
		} else {
			b.Dict = int64(2|props[0]&1) << (props[0]/2 + 11)
		}
	}
	for body.Len() > 0 {
		if c, _ := body.ReadByte(); c != 0 {
			return fmt.Errorf("%w: nonzero block header padding", ErrFormat)
		}
	}
	return nil
}

// section reads n bytes of r from off, buffered, counting what it hands
// out; it is both the io.Reader and io.ByteReader the LZMA2 decoder wants.
type section struct {
	r        io.ReaderAt
	off, end int64 // the next byte to fetch from r, and the limit
	buf      []byte
	i, n     int   // buf[i:n] is fetched and not handed out
	used     int64 // bytes handed out
}

func (s *section) reset(r io.ReaderAt, off, n int64) {
	s.r, s.off, s.end, s.i, s.n, s.used = r, off, off+n, 0, 0, 0
	if s.buf == nil {
		s.buf = make([]byte, 32<<10)
	}
}

func (s *section) fetch() error {
	if s.off >= s.end {
		return io.EOF
	}
	k := int(min(int64(len(s.buf)), s.end-s.off))
	n, err := s.r.ReadAt(s.buf[:k], s.off)
	if n < k {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return &readErr{fmt.Errorf("reading at offset %d: %w", s.off, err)}
	}
	s.off += int64(k)
	s.i, s.n = 0, k
	return nil
}

func (s *section) Read(p []byte) (int, error) {
	if s.i == s.n {
		if err := s.fetch(); err != nil {
			return 0, err
		}
	}
	k := copy(p, s.buf[s.i:s.n])
	s.i += k
	s.used += int64(k)
	return k, nil
}

func (s *section) ReadByte() (byte, error) {
	if s.i == s.n {
		if err := s.fetch(); err != nil {
			return 0, err
		}
	}
	c := s.buf[s.i]
	s.i++
	s.used++
	return c, nil
}

// blockReader yields a block's decompressed bytes and, on reaching the
// size the index gives, checks that the LZMA2 data ends there too, that it
// fills the block, and that the block's check matches.
type blockReader struct {
	x    *Reader
	i    int
	b    *Block
	src  section
	lz   lzma2Decoder
	h    hash.Hash
	left int64
	err  error
}

func (x *Reader) openBlock(i int, old io.Reader) (io.Reader, error) {
	b := &x.blocks[i]
	br, _ := old.(*blockReader)
	if br == nil {
		br = &blockReader{x: x}
	}
	br.i, br.b, br.left, br.err = i, b, b.Size, nil
	br.src.reset(x.r, b.Offset+int64(b.header), b.compressed)
	dict := max(minDict, min(b.Dict, b.Size))
	lz, err := x.opt.lzma2(&br.src, int(dict), br.lz)
	if err != nil {
		return nil, br.wrap(fmt.Errorf("%w: %v", ErrCorrupt, err))
	}
	br.lz = lz
	switch b.Check {
	case 0:
		br.h = nil
	case 1:
		br.h = crc32.NewIEEE()
	case 4:
		br.h = crc64.New(crc64Table)
	case 10:
		br.h = sha256.New()
	}
	return br, nil
}

func (br *blockReader) wrap(err error) error {
	return fmt.Errorf("xzindex: block %d at offset %d: %w", br.i, br.b.Offset, err)
}

func (br *blockReader) Read(p []byte) (int, error) {
	if br.err != nil {
		return 0, br.err
	}
	if br.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), br.left)]
	n, err := br.lz.Read(p)
	if br.h != nil {
		br.h.Write(p[:n])
	}
	br.left -= int64(n)
	switch {
	case err == io.EOF && br.left > 0:
		err = fmt.Errorf("%w: LZMA2 data ends %d bytes before the block's size", ErrCorrupt, br.left)
	case err == io.EOF:
		err = nil
	case err != nil && isReadErr(err):
	case err != nil:
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err == nil && br.left == 0 {
		err = br.finish()
	}
	if err != nil {
		br.err = br.wrap(err)
		return n, br.err
	}
	return n, nil
}

// isReadErr tells an error of the underlying ReaderAt, which passes
// through, from a decoding error.
func isReadErr(err error) bool {
	var re *readErr
	return errors.As(err, &re)
}

type readErr struct{ err error }

func (e *readErr) Error() string { return e.err.Error() }
func (e *readErr) Unwrap() error { return e.err }

// finish checks the block's end: the LZMA2 end marker right after the
// last byte, the compressed size, the padding and the check.
func (br *blockReader) finish() error {
	var one [1]byte
	n, err := br.lz.Read(one[:])
	if n > 0 || err != io.EOF || !br.lz.EOS() {
		return fmt.Errorf("%w: LZMA2 data does not end at the block's size %d", ErrCorrupt, br.b.Size)
	}
	if br.src.used != br.b.compressed || br.src.i != br.src.n || br.src.off != br.src.end {
		return fmt.Errorf("%w: LZMA2 data is %d bytes, the index says %d", ErrCorrupt, br.src.used, br.b.compressed)
	}
	pad := int((4 - br.b.Unpadded%4) % 4)
	cs := checkSize[br.b.Check]
	tail := make([]byte, pad+cs)
	if _, err := br.x.r.ReadAt(tail, br.src.end); err != nil {
		return fmt.Errorf("reading the block's check: %w", err)
	}
	for _, c := range tail[:pad] {
		if c != 0 {
			return fmt.Errorf("%w: nonzero block padding", ErrFormat)
		}
	}
	got := tail[pad:]
	switch br.b.Check {
	case 1:
		if binary.LittleEndian.Uint32(got) != br.h.(hash.Hash32).Sum32() {
			return fmt.Errorf("CRC32: %w", ErrChecksum)
		}
	case 4:
		if binary.LittleEndian.Uint64(got) != br.h.(hash.Hash64).Sum64() {
			return fmt.Errorf("CRC64: %w", ErrChecksum)
		}
	case 10:
		if !bytes.Equal(got, br.h.Sum(nil)) {
			return fmt.Errorf("SHA-256: %w", ErrChecksum)
		}
	}
	return nil
}
