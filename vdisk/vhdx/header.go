package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ovfmount/ovfmount/internal/readat"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// Fixed layout of the 1 MiB header section.
const (
	kib = 1 << 10
	mib = 1 << 20

	headerSectionEnd = 1 * mib
	headerSize       = 4 * kib
	header1Offset    = 64 * kib
	header2Offset    = 128 * kib
	regionTable1     = 192 * kib
	regionTable2     = 256 * kib
	regionTableSize  = 64 * kib
)

var (
	fileMagic    = []byte("vhdxfile")
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
	headSig      = sig("head")
	regiSig      = sig("regi")
	metadataSig  = binary.LittleEndian.Uint64([]byte("metadata"))
	zeroChecksum [4]byte
)

// sig turns a four-character signature into the little-endian word the
// file stores.
func sig(s string) uint32 { return binary.LittleEndian.Uint32([]byte(s)) }

// checksumOK verifies a CRC-32C stored at b[4:8], computed over b with that
// field taken as zero (the convention of every VHDX structure).
func checksumOK(b []byte) bool {
	c := crc32.Update(0, castagnoli, b[:4])
	c = crc32.Update(c, castagnoli, zeroChecksum[:])
	c = crc32.Update(c, castagnoli, b[8:])
	return c == binary.LittleEndian.Uint32(b[4:8])
}

// header is the part of a VHDX header this package uses.
type header struct {
	raw        []byte // the whole 4 KiB, to compare twin headers
	seq        uint64
	dataWrite  guid // DataWriteGuid: what a child's parent_linkage names
	logGUID    guid
	logVersion uint16
	logLength  uint32
	logOffset  uint64
}

// pastEndError is a structure that lies (partly) past the end of the file:
// the file is truncated or the pointer to the structure is corrupt. It
// wraps blockmap.ErrCorrupt, unlike an error from the reader itself, which
// callers pass on as it is.
type pastEndError struct{ n, off, size int64 }

func (e *pastEndError) Error() string {
	return fmt.Sprintf("%d bytes at %d lie past the end of the file (%d bytes)", e.n, e.off, e.size)
}

func (e *pastEndError) Unwrap() error { return blockmap.ErrCorrupt }

func pastEnd(n int, off, size int64) bool {
	return off < 0 || off > size || int64(n) > size-off
}

// readAt reads exactly len(p) bytes at off from r, which holds size bytes,
// and refuses any read outside [0, size) before touching r.
func readAt(r io.ReaderAt, size int64, p []byte, off int64) error {
	if pastEnd(len(p), off, size) {
		return &pastEndError{int64(len(p)), off, size}
	}
	return readat.Full(r, p, off)
}

func corrupt(name, format string, args ...any) error {
	return fmt.Errorf("vhdx: %s: %s: %w", name, fmt.Sprintf(format, args...), blockmap.ErrCorrupt)
}

// readFail reports a failed read of a structure: corruption when the
// structure lies past the end of the file, otherwise the reader's error.
func readFail(name, what string, off int64, err error) error {
	return fmt.Errorf("vhdx: %s: reading %s at %d: %w", name, what, off, err)
}

func unsupported(name, format string, args ...any) error {
	return fmt.Errorf("vhdx: %s: %s: %w", name, fmt.Sprintf(format, args...), blockmap.ErrUnsupported)
}

// readHeader returns the header at off, or a reason why it is not valid,
// or the reader's error.
func readHeader(r io.ReaderAt, size, off int64) (*header, string, error) {
	b := make([]byte, headerSize)
	if err := readAt(r, size, b, off); err != nil {
		var pe *pastEndError
		if errors.As(err, &pe) {
			return nil, err.Error(), nil
		}
		return nil, "", err
	}
	if binary.LittleEndian.Uint32(b[0:]) != headSig {
		return nil, "no \"head\" signature", nil
	}
	if !checksumOK(b) {
		return nil, "bad CRC-32C", nil
	}
	if v := binary.LittleEndian.Uint16(b[66:]); v != 1 {
		return nil, fmt.Sprintf("version %d, not 1", v), nil
	}
	h := &header{
		raw:        b,
		seq:        binary.LittleEndian.Uint64(b[8:]),
		logVersion: binary.LittleEndian.Uint16(b[64:]),
		logLength:  binary.LittleEndian.Uint32(b[68:]),
		logOffset:  binary.LittleEndian.Uint64(b[72:]),
	}
	copy(h.dataWrite[:], b[32:48])
	copy(h.logGUID[:], b[48:64])
	return h, "", nil
}

// activeHeader picks the header qemu and Hyper-V would use: the valid one
// with the higher sequence number. Two valid headers with the same number
// are only accepted when identical (Disk2VHD writes such twins), because
// otherwise there is no way to tell which update was the last.
func activeHeader(r io.ReaderAt, size int64, name string) (*header, []string, error) {
	h1, why1, err := readHeader(r, size, header1Offset)
	if err != nil {
		return nil, nil, readFail(name, "header 1", header1Offset, err)
	}
	h2, why2, err := readHeader(r, size, header2Offset)
	if err != nil {
		return nil, nil, readFail(name, "header 2", header2Offset, err)
	}
	switch {
	case h1 == nil && h2 == nil:
		return nil, nil, corrupt(name, "no valid header (header 1 at %d: %s; header 2 at %d: %s)",
			header1Offset, why1, header2Offset, why2)
	case h2 == nil:
		return h1, []string{fmt.Sprintf("header 2 at %d is invalid (%s); using header 1", header2Offset, why2)}, nil
	case h1 == nil:
		return h2, []string{fmt.Sprintf("header 1 at %d is invalid (%s); using header 2", header1Offset, why1)}, nil
	case h1.seq > h2.seq:
		return h1, nil, nil
	case h2.seq > h1.seq:
		return h2, nil, nil
	case bytes.Equal(h1.raw, h2.raw):
		return h1, nil, nil
	}
	return nil, nil, corrupt(name, "both headers are valid with sequence number %d but differ", h1.seq)
}

// checkLogPlacement applies qemu's rules for the log fields of the active
// header, which hold whether or not the log is in use.
func (h *header) checkLogPlacement(name string) error {
	if h.logVersion != 0 {
		return corrupt(name, "log version %d, only 0 is defined", h.logVersion)
	}
	if h.logOffset < mib || h.logOffset%mib != 0 {
		return corrupt(name, "log offset %d is not a multiple of 1 MiB past the header section", h.logOffset)
	}
	if h.logOffset > uint64(1)<<62 {
		return corrupt(name, "log offset %d is absurd", h.logOffset)
	}
	return nil
}
