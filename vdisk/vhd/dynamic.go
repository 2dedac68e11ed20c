package vhd

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const (
	dynHeaderSize   = 1024
	dynChecksumOff  = 36
	cookieDynamic   = "cxsparse"
	formatVersion   = 0x00010000
	unallocated     = 0xFFFFFFFF
	locatorCount    = 8
	locatorOff      = 576
	locatorSize     = 24
	parentNameOff   = 64
	parentNameSize  = 512
	maxLocatorBytes = 4096 // far more than any path; bigger ones are skipped
)

// dynHeader is the part of the dynamic disk header that reading needs.
type dynHeader struct {
	raw        []byte
	at         int64
	batOffset  uint64
	maxEntries uint32
	blockSize  uint32
}

func readDynHeader(r io.ReaderAt, size int64, at uint64) (*dynHeader, []string, error) {
	if at > uint64(size) || uint64(size)-at < dynHeaderSize {
		return nil, nil, fmt.Errorf("the dynamic header at %d lies past the end of the image (%d bytes): %w", at, size, blockmap.ErrCorrupt)
	}
	raw := make([]byte, dynHeaderSize)
	if err := readFull(r, raw, int64(at), "the dynamic header"); err != nil {
		return nil, nil, err
	}
	if string(raw[:8]) != cookieDynamic {
		return nil, nil, fmt.Errorf("no %q cookie in the dynamic header at %d (found %q): %w", cookieDynamic, at, raw[:8], blockmap.ErrCorrupt)
	}
	be := binary.BigEndian
	h := &dynHeader{
		raw:        raw,
		at:         int64(at),
		batOffset:  be.Uint64(raw[16:]),
		maxEntries: be.Uint32(raw[28:]),
		blockSize:  be.Uint32(raw[32:]),
	}
	var warn []string
	if stored, computed := be.Uint32(raw[dynChecksumOff:]), checksum(raw, dynChecksumOff); stored != computed {
		warn = append(warn, fmt.Sprintf("vhd: the dynamic header has a bad checksum (stored %#08x, computed %#08x); reading on", stored, computed))
	}
	if v := be.Uint32(raw[24:]); v != formatVersion {
		warn = append(warn, fmt.Sprintf("vhd: the dynamic header has version %#08x, not %#08x", v, formatVersion))
	}
	return h, warn, nil
}

// checkBlocks validates the block size and the BAT's extent against the
// virtual size and the image, the values qemu refuses too.
func (h *dynHeader) checkBlocks(vsize, size int64) error {
	bs := h.blockSize
	if bs < sectorSize || bits.OnesCount32(bs) != 1 {
		return fmt.Errorf("block size %d is not a power of two of at least %d: %w", bs, sectorSize, blockmap.ErrCorrupt)
	}
	if covered := uint64(h.maxEntries) * uint64(bs); covered < uint64(vsize) {
		return fmt.Errorf("the BAT's %d entries of %d-byte blocks cover %d bytes, less than the virtual size %d: %w",
			h.maxEntries, bs, covered, vsize, blockmap.ErrCorrupt)
	}
	if tb := uint64(h.maxEntries) * 4; h.batOffset > uint64(size) || uint64(size)-h.batOffset < tb {
		return fmt.Errorf("the BAT of %d entries (%d bytes) at %d runs past the end of the image (%d bytes): %w",
			h.maxEntries, tb, h.batOffset, size, blockmap.ErrCorrupt)
	}
	return nil
}

// bitmapSize is the sector bitmap in front of each block: one bit per
// sector, padded to whole sectors.
func (h *dynHeader) bitmapSize() int64 {
	b := (int64(h.blockSize)/sectorSize + 7) / 8
	return (b + sectorSize - 1) / sectorSize * sectorSize
}

// parentError describes what a differencing disk needs, from the header
// alone: the parent's name and whatever paths its locators hold.
func (h *dynHeader) parentError(r io.ReaderAt, size int64) error {
	name := decodeUTF16(h.raw[parentNameOff:parentNameOff+parentNameSize], binary.BigEndian)
	var locs []string
	be := binary.BigEndian
	for i := range locatorCount {
		e := h.raw[locatorOff+i*locatorSize:][:locatorSize]
		code := string(e[:4])
		length := be.Uint32(e[8:])
		off := be.Uint64(e[16:])
		if be.Uint32(e[:4]) == 0 || length == 0 {
			continue
		}
		if p, ok := readLocator(r, size, code, off, length); ok {
			locs = append(locs, strconv.Quote(code)+" "+blockmap.Quote(p))
		}
	}
	msg := "differencing disk: its unallocated sectors live in the parent " + blockmap.Quote(name)
	if name == "" {
		msg = "differencing disk: its unallocated sectors live in a parent image with no name in the header"
	}
	if len(locs) > 0 {
		msg += " (parent locators: " + strings.Join(locs, ", ") + ")"
	}
	return fmt.Errorf("%s, and parent images are never looked up: %w", msg, blockmap.ErrUnsupported)
}

// readLocator returns the path a parent locator holds, if it is one this
// package can decode and it lies inside the image.
func readLocator(r io.ReaderAt, size int64, code string, off uint64, length uint32) (string, bool) {
	if length > maxLocatorBytes || off > uint64(size) || uint64(size)-off < uint64(length) {
		return "", false
	}
	b := make([]byte, length)
	if readFull(r, b, int64(off), "a parent locator") != nil {
		return "", false
	}
	switch code {
	case "W2ku", "W2ru": // Windows absolute and relative paths, UTF-16LE
		return decodeUTF16(b, binary.LittleEndian), true
	case "MacX", "Wi2k", "Wi2r": // a file:// URL in UTF-8; deprecated single-byte paths
		return strings.ToValidUTF8(strings.TrimRight(string(b), "\x00"), "\uFFFD"), true
	}
	return "", false
}

// decodeUTF16 decodes up to the first NUL.
func decodeUTF16(b []byte, order binary.ByteOrder) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := order.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
