package xzindex

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

const (
	streamHeaderSize = 12
	streamFooterSize = 12
)

var headerMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// checkSize is the size of each check type's field; -1 for the ids xz
// reserves but does not define.
var checkSize = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}

// checkNames are the check types xz defines; the others are refused.
var checkNames = map[byte]string{0: "none", 1: "CRC32", 4: "CRC64", 10: "SHA-256"}

// record is one block as a stream's index lists it.
type record struct {
	unpadded, uncompressed int64
}

// stream is one xz stream of a file: where it starts and its blocks.
type stream struct {
	start   int64
	check   byte
	records []record
}

// readStreams parses the file from its end: stream padding, footer,
// index, header, and so on to the first stream, which must start at 0.
// It returns the streams in file order.
func readStreams(r io.ReaderAt, size int64, opt *Options) ([]stream, error) {
	var magic [6]byte
	if size < streamHeaderSize+streamFooterSize {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrNotXZ, size)
	}
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return nil, fmt.Errorf("xzindex: reading the stream header: %w", err)
	}
	if !bytes.Equal(magic[:], headerMagic) {
		return nil, fmt.Errorf("%w: no xz magic at offset 0", ErrNotXZ)
	}
	if size%4 != 0 {
		return nil, fmt.Errorf("%w: size %d is not a multiple of four", ErrFormat, size)
	}
	var streams []stream
	units := 0
	end := size
	for end > 0 {
		var err error
		if end, err = skipPadding(r, end); err != nil {
			return nil, err
		}
		if end == 0 {
			return nil, fmt.Errorf("%w: stream padding at the start of the file", ErrFormat)
		}
		s, err := readStream(r, end, opt.MaxUnits-units)
		if err != nil {
			return nil, err
		}
		units += len(s.records)
		streams = append(streams, s)
		end = s.start
	}
	for i, j := 0, len(streams)-1; i < j; i, j = i+1, j-1 {
		streams[i], streams[j] = streams[j], streams[i]
	}
	return streams, nil
}

// skipPadding returns the offset where the zero words before end begin.
func skipPadding(r io.ReaderAt, end int64) (int64, error) {
	var buf [4096]byte
	for end > 0 {
		n := min(int64(len(buf)), end)
		p := buf[:n]
		if _, err := r.ReadAt(p, end-n); err != nil {
			return 0, fmt.Errorf("xzindex: reading at offset %d: %w", end-n, err)
		}
		i := len(p)
		for i >= 4 && binary.LittleEndian.Uint32(p[i-4:]) == 0 {
			i -= 4
		}
		end -= int64(len(p) - i)
		if i > 0 {
			break
		}
	}
	return end, nil
}

// readStream reads the stream that ends at end: its footer, index and
// header, checking each against the others and the file.
func readStream(r io.ReaderAt, end int64, maxUnits int) (stream, error) {
	var s stream
	fo := end - streamFooterSize
	if fo < streamHeaderSize {
		return s, fmt.Errorf("%w: %d bytes before offset %d cannot hold a stream", ErrFormat, end, end)
	}
	var f [streamFooterSize]byte
	if _, err := r.ReadAt(f[:], fo); err != nil {
		return s, fmt.Errorf("xzindex: reading the stream footer at offset %d: %w", fo, err)
	}
	if f[10] != 'Y' || f[11] != 'Z' {
		return s, fmt.Errorf("%w: no stream footer magic at offset %d", ErrNotXZ, fo+10)
	}
	if crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[0:4]) {
		return s, fmt.Errorf("xzindex: stream footer at offset %d: %w", fo, ErrChecksum)
	}
	if err := checkFlags(f[8:10]); err != nil {
		return s, fmt.Errorf("xzindex: stream footer at offset %d: %w", fo, err)
	}
	s.check = f[9]
	backward := (int64(binary.LittleEndian.Uint32(f[4:8])) + 1) * 4
	io0 := fo - backward
	if io0 < streamHeaderSize {
		return s, fmt.Errorf("%w: stream footer at offset %d announces a %d-byte index, more than the file holds", ErrFormat, fo, backward)
	}
	recs, blocks, err := readIndex(r, io0, backward, maxUnits)
	if err != nil {
		return s, err
	}
	s.records = recs
	s.start = io0 - blocks - streamHeaderSize
	if s.start < 0 {
		return s, fmt.Errorf("%w: the index at offset %d lists %d bytes of blocks, more than precede it", ErrFormat, io0, blocks)
	}
	var h [streamHeaderSize]byte
	if _, err := r.ReadAt(h[:], s.start); err != nil {
		return s, fmt.Errorf("xzindex: reading the stream header at offset %d: %w", s.start, err)
	}
	if !bytes.Equal(h[:6], headerMagic) {
		return s, fmt.Errorf("%w: no stream header at offset %d, where the index at offset %d puts it", ErrFormat, s.start, io0)
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:12]) {
		return s, fmt.Errorf("xzindex: stream header at offset %d: %w", s.start, ErrChecksum)
	}
	if !bytes.Equal(h[6:8], f[8:10]) {
		return s, fmt.Errorf("%w: stream header at offset %d and footer at offset %d disagree on flags", ErrFormat, s.start, fo)
	}
	return s, nil
}

func checkFlags(fl []byte) error {
	if fl[0] != 0 || fl[1]&0xf0 != 0 {
		return fmt.Errorf("%w: reserved stream flags set (%#x %#x)", ErrFormat, fl[0], fl[1])
	}
	if _, ok := checkNames[fl[1]]; !ok {
		return fmt.Errorf("%w: check type %d", ErrUnsupported, fl[1])
	}
	return nil
}

// indexReader reads an index, counting its bytes and summing its CRC32.
type indexReader struct {
	br  *bufio.Reader
	crc uint32
	n   int64
	off int64 // the index's offset, for errors
}

func (x *indexReader) byte() (byte, error) {
	b, err := x.br.ReadByte()
	if err != nil {
		return 0, fmt.Errorf("%w: the index at offset %d ends early", ErrFormat, x.off)
	}
	x.crc = crc32.Update(x.crc, crc32.IEEETable, []byte{b})
	x.n++
	return b, nil
}

func (x *indexReader) varint() (int64, error) {
	return readVarint(x.byte, fmt.Sprintf("the index at offset %d", x.off))
}

// readVarint reads xz's multibyte integer: at most nine bytes, no
// superfluous zero byte, at most 2^63-1.
func readVarint(next func() (byte, error), where string) (int64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		b, err := next()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: %s: integer with a superfluous zero byte", ErrFormat, where)
			}
			if v > math.MaxInt64 {
				return 0, fmt.Errorf("%w: %s: integer out of range", ErrFormat, where)
			}
			return int64(v), nil
		}
	}
	return 0, fmt.Errorf("%w: %s: integer longer than nine bytes", ErrFormat, where)
}

// readIndex reads the index of size bytes at off. It returns the records
// and the total size of the blocks they describe (padded).
func readIndex(r io.ReaderAt, off, size int64, maxUnits int) ([]record, int64, error) {
	x := &indexReader{br: bufio.NewReaderSize(io.NewSectionReader(r, off, size), 16<<10), off: off}
	if b, err := x.byte(); err != nil {
		return nil, 0, err
	} else if b != 0 {
		return nil, 0, fmt.Errorf("%w: no index indicator at offset %d", ErrFormat, off)
	}
	count, err := x.varint()
	if err != nil {
		return nil, 0, err
	}
	// Each record takes at least two bytes, which bounds the allocation
	// by what the index can hold.
	if count > (size-x.n)/2 {
		return nil, 0, fmt.Errorf("%w: the index at offset %d lists %d blocks in %d bytes", ErrFormat, off, count, size)
	}
	if count > int64(max(0, maxUnits)) {
		return nil, 0, fmt.Errorf("%w: the index at offset %d lists %d blocks, over the limit of %d", ErrTooManyUnits, off, count, maxUnits)
	}
	recs := make([]record, 0, count)
	var blocks int64
	for i := int64(0); i < count; i++ {
		var rec record
		if rec.unpadded, err = x.varint(); err != nil {
			return nil, 0, err
		}
		if rec.uncompressed, err = x.varint(); err != nil {
			return nil, 0, err
		}
		if rec.unpadded < 5 || rec.unpadded > math.MaxInt64-3 {
			return nil, 0, fmt.Errorf("%w: the index at offset %d: block %d has an unpadded size of %d", ErrFormat, off, i, rec.unpadded)
		}
		blocks += (rec.unpadded + 3) &^ 3
		if blocks > off {
			return nil, 0, fmt.Errorf("%w: the index at offset %d lists more bytes of blocks than precede it", ErrFormat, off)
		}
		recs = append(recs, rec)
	}
	for x.n%4 != 0 {
		b, err := x.byte()
		if err != nil {
			return nil, 0, err
		}
		if b != 0 {
			return nil, 0, fmt.Errorf("%w: the index at offset %d: nonzero padding", ErrFormat, off)
		}
	}
	want := x.crc
	var c [4]byte
	if _, err := io.ReadFull(x.br, c[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: the index at offset %d ends early", ErrFormat, off)
	}
	if binary.LittleEndian.Uint32(c[:]) != want {
		return nil, 0, fmt.Errorf("xzindex: the index at offset %d: %w", off, ErrChecksum)
	}
	if x.n+4 != size {
		return nil, 0, fmt.Errorf("%w: the index at offset %d is %d bytes, the stream footer says %d", ErrFormat, off, x.n+4, size)
	}
	return recs, blocks, nil
}
