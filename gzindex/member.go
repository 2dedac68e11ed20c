package gzindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// gzip member framing (RFC 1952 section 2.3).
const (
	gzID1, gzID2  = 0x1f, 0x8b
	gzDeflate     = 8
	flagText      = 1 << 0
	flagHdrCRC    = 1 << 1
	flagExtra     = 1 << 2
	flagName      = 1 << 3
	flagComment   = 1 << 4
	flagsReserved = 0xe0
	gzFixedHeader = 10
	gzTrailer     = 8
)

// headerReader consumes a member header from a source, keeping the CRC-32
// of the bytes consumed for the optional header CRC. Names and comments
// have no length limit in RFC 1952, so they are scanned in place, in
// buffer-sized pieces, never copied.
type headerReader struct {
	s     *source
	crc   uint32
	start int64
}

func (h *headerReader) err(msg string) error {
	return fmt.Errorf("%w: %s (member at compressed byte %d)", ErrHeader, msg, h.start)
}

func (h *headerReader) ioErr(err error) error {
	if errors.Is(err, errEnd) {
		return fmt.Errorf("%w: the member header at compressed byte %d is cut short", ErrTruncated, h.start)
	}
	return fmt.Errorf("gzindex: reading the member header at compressed byte %d: %w", h.start, err)
}

// next returns the next k (≤ 16) header bytes.
func (h *headerReader) next(k int) ([]byte, error) {
	if err := h.s.avail(k); err != nil {
		return nil, h.ioErr(err)
	}
	b := h.s.buf[h.s.pos : h.s.pos+k]
	h.s.pos += k
	h.crc = crc32.Update(h.crc, crc32.IEEETable, b)
	return b, nil
}

func (h *headerReader) skip(k int) error {
	for k > 0 {
		if err := h.s.avail(1); err != nil {
			return h.ioErr(err)
		}
		b := h.s.buf[h.s.pos:min(h.s.n, h.s.pos+k)]
		h.s.pos += len(b)
		k -= len(b)
		h.crc = crc32.Update(h.crc, crc32.IEEETable, b)
	}
	return nil
}

// skipString skips a zero-terminated field, terminator included.
func (h *headerReader) skipString() error {
	for {
		if err := h.s.avail(1); err != nil {
			return h.ioErr(err)
		}
		b := h.s.buf[h.s.pos:h.s.n]
		i := bytes.IndexByte(b, 0)
		if i >= 0 {
			b = b[:i+1]
		}
		h.s.pos += len(b)
		h.crc = crc32.Update(h.crc, crc32.IEEETable, b)
		if i >= 0 {
			return nil
		}
	}
}

// readMemberHeader parses the member header at the source's position and
// leaves the source at the member's first deflate byte. A wrong magic
// number is ErrNotGzip.
func readMemberHeader(s *source) error {
	h := headerReader{s: s, start: s.offset()}
	if err := s.avail(2); err != nil && !errors.Is(err, errEnd) {
		return h.ioErr(err)
	}
	if s.n-s.pos == 1 && s.buf[s.pos] == gzID1 {
		return fmt.Errorf("%w: the stream ends after the first byte of a member at compressed byte %d", ErrTruncated, h.start)
	}
	if s.n-s.pos < 2 || s.buf[s.pos] != gzID1 || s.buf[s.pos+1] != gzID2 {
		return fmt.Errorf("%w: no gzip magic number at compressed byte %d", ErrNotGzip, h.start)
	}
	b, err := h.next(gzFixedHeader)
	if err != nil {
		return err
	}
	if b[2] != gzDeflate {
		return h.err(fmt.Sprintf("compression method %d is not deflate", b[2]))
	}
	flags := b[3]
	if flags&flagsReserved != 0 {
		return h.err(fmt.Sprintf("reserved flag bits %#02x are set", flags&flagsReserved))
	}
	if flags&flagExtra != 0 {
		x, err := h.next(2)
		if err != nil {
			return err
		}
		if err := h.skip(int(binary.LittleEndian.Uint16(x))); err != nil {
			return err
		}
	}
	if flags&flagName != 0 {
		if err := h.skipString(); err != nil {
			return err
		}
	}
	if flags&flagComment != 0 {
		if err := h.skipString(); err != nil {
			return err
		}
	}
	if flags&flagHdrCRC != 0 {
		want := uint16(h.crc)
		x, err := h.next(2)
		if err != nil {
			return err
		}
		if binary.LittleEndian.Uint16(x) != want {
			return h.err("header CRC-16 mismatch")
		}
	}
	return nil
}

// trailer is a member's CRC-32 and ISIZE (the size modulo 2^32).
type trailer struct {
	crc, size uint32
}

// readTrailer reads the trailer at byte offset off and leaves the source
// after it.
func readTrailer(s *source, off int64) (trailer, error) {
	s.seek(off)
	if err := s.avail(gzTrailer); err != nil {
		if errors.Is(err, errEnd) {
			return trailer{}, fmt.Errorf("%w: the member trailer at compressed byte %d is missing or cut short", ErrTruncated, off)
		}
		return trailer{}, fmt.Errorf("gzindex: reading the member trailer at compressed byte %d: %w", off, err)
	}
	b := s.buf[s.pos : s.pos+gzTrailer]
	s.pos += gzTrailer
	return trailer{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])}, nil
}
