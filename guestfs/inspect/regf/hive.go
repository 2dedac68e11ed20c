package regf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

var (
	// ErrNotHive: the file does not start with a registry header.
	ErrNotHive = errors.New("regf: not a registry hive")
	// ErrCorrupt: a record does not parse, or points outside the hive.
	ErrCorrupt = errors.New("regf: corrupt hive")
	// ErrNotFound: no such key or value.
	ErrNotFound = errors.New("regf: not found")
	// ErrTooLarge: a value's data is over the limit its reader gave.
	ErrTooLarge = errors.New("regf: value data too large")
)

const (
	baseBlockSize = 0x1000
	// minNK is the smallest key record (a cell with an empty name): no
	// hive holds more keys than its data area has room for such cells, the
	// bound on what one enumeration may yield.
	minNK = 4 + 0x4c
	// maxSegment is the most data one big-data segment holds.
	maxSegment = 16344
)

// Hive is an opened registry hive. It reads on demand through the
// io.ReaderAt it was opened on, holds nothing but the header, and is
// safe for concurrent use when that reader is.
type Hive struct {
	r     io.ReaderAt
	end   int64 // the end of the hive bins' data, an absolute offset
	minor uint32
	root  uint32
	// Warnings are what Open tolerated: a header checksum that does not
	// match, sequence numbers that say the hive was not written cleanly.
	Warnings []string
}

// Open reads the header of the hive held in r's first size bytes.
func Open(r io.ReaderAt, size int64) (*Hive, error) {
	if size < baseBlockSize+32 {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotHive, size)
	}
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("regf: header: %w", err)
	}
	if string(b[:4]) != "regf" {
		return nil, ErrNotHive
	}
	le := binary.LittleEndian
	h := &Hive{r: r, minor: le.Uint32(b[0x18:]), root: le.Uint32(b[0x24:])}
	if major := le.Uint32(b[0x14:]); major != 1 {
		return nil, fmt.Errorf("%w: format version %d.%d", ErrCorrupt, major, h.minor)
	}
	var sum uint32
	for i := 0; i < 0x1fc; i += 4 {
		sum ^= le.Uint32(b[i:])
	}
	switch sum {
	case 0:
		sum = 1
	case 0xffffffff:
		sum = 0xfffffffe
	}
	if sum != le.Uint32(b[0x1fc:]) {
		h.Warnings = append(h.Warnings, "header checksum does not match: the header may be damaged")
	}
	if s1, s2 := le.Uint32(b[4:]), le.Uint32(b[8:]); s1 != s2 {
		h.Warnings = append(h.Warnings, fmt.Sprintf("sequence numbers %d and %d differ: the hive was not written cleanly, and its transaction logs are not applied", s1, s2))
	}
	h.end = size
	if bins := int64(le.Uint32(b[0x28:])); bins > 0 && baseBlockSize+bins <= size {
		h.end = baseBlockSize + bins
	} else {
		h.Warnings = append(h.Warnings, fmt.Sprintf("hive bins size %d does not fit the file of %d bytes; reading to the end of the file", bins, size))
	}
	hb := make([]byte, 4)
	if _, err := r.ReadAt(hb, baseBlockSize); err != nil {
		return nil, fmt.Errorf("regf: first hive bin: %w", err)
	}
	if string(hb) != "hbin" {
		return nil, fmt.Errorf("%w: no hive bin at 0x1000", ErrCorrupt)
	}
	return h, nil
}

// cell is an allocated cell's payload: its absolute offset in the file
// and length.
type cell struct {
	off uint32 // the cell's offset, as records refer to it
	abs int64
	n   int64
}

// cell finds the allocated cell at offset off (relative to the first
// hive bin, as records refer to each other).
func (h *Hive) cell(off uint32) (cell, error) {
	abs := baseBlockSize + int64(off)
	if off%8 != 0 || abs+4 > h.end {
		return cell{}, fmt.Errorf("%w: cell offset %#x outside the hive", ErrCorrupt, off)
	}
	var b [4]byte
	if _, err := h.r.ReadAt(b[:], abs); err != nil {
		return cell{}, fmt.Errorf("regf: cell %#x: %w", off, err)
	}
	size := int32(binary.LittleEndian.Uint32(b[:]))
	if size >= 0 {
		return cell{}, fmt.Errorf("%w: cell %#x is not allocated", ErrCorrupt, off)
	}
	n := -int64(size)
	if n < 8 || abs+n > h.end {
		return cell{}, fmt.Errorf("%w: cell %#x of %d bytes runs past the hive", ErrCorrupt, off, n)
	}
	return cell{off: off, abs: abs + 4, n: n - 4}, nil
}

// read reads n bytes at offset at of the cell's payload.
func (h *Hive) read(c cell, at, n int64) ([]byte, error) {
	if at < 0 || n < 0 || at+n > c.n {
		return nil, fmt.Errorf("%w: cell %#x: %d bytes at %d, past its %d", ErrCorrupt, c.off, n, at, c.n)
	}
	b := make([]byte, n)
	if _, err := h.r.ReadAt(b, c.abs+at); err != nil && !(err == io.EOF && n == 0) {
		return nil, fmt.Errorf("regf: cell %#x: %w", c.off, err)
	}
	return b, nil
}

// record reads the first n bytes of the cell at off (or all of it when
// shorter, then at least min) and checks its two-letter signature.
func (h *Hive) record(off uint32, sig string, n, min int64) (cell, []byte, error) {
	c, err := h.cell(off)
	if err != nil {
		return c, nil, err
	}
	n = minInt(n, c.n)
	if n < min {
		return c, nil, fmt.Errorf("%w: %s record %#x of %d bytes", ErrCorrupt, sig, off, c.n)
	}
	b, err := h.read(c, 0, n)
	if err != nil {
		return c, nil, err
	}
	if sig != "" && string(b[:2]) != sig {
		return c, nil, fmt.Errorf("%w: cell %#x is %q, want %q", ErrCorrupt, off, b[:2], sig)
	}
	return c, b, nil
}

func minInt(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// maxKeys is the most keys the hive's data area has room for.
func (h *Hive) maxKeys() int64 { return (h.end - baseBlockSize) / minNK }
