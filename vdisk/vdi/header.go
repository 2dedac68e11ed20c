package vdi

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// The layout, from VirtualBox's VDICore.h (and qemu's block/vdi.c, which
// reads the same 1.1 header). Everything is little-endian.
const (
	preHeaderSize = 0x48 // 64 bytes of text, the signature, the version
	signatureOff  = 0x40
	versionOff    = 0x44
	signature     = 0xbeda107f

	// Version 1.x: VDIHEADER1 (0x180 bytes) after the pre-header, and
	// VDIHEADER1PLUS (0x190, with the LCHS geometry) when cbHeader says so.
	v1HeaderSize     = 0x180
	v1PlusHeaderSize = 0x190
	// Version 0.2: VDIHEADER0 (0x15c bytes), the block map right after it
	// and the data right after the map; no block extra data.
	v0Version    = 0x00000002
	v0HeaderSize = 0x15c

	sectorSize = 512

	blockFree = 0xFFFFFFFF // VDI_IMAGE_BLOCK_FREE: not in this image
	blockZero = 0xFFFFFFFE // VDI_IMAGE_BLOCK_ZERO: reads as zeros

	// The largest block size is the largest power of two a uint32 holds;
	// below a sector, no writer makes blocks (VirtualBox reads in sectors).
	minBlockSize = sectorSize
)

// Image types (VDIIMAGETYPE).
const (
	typeNormal = 1 // dynamically growing base image
	typeFixed  = 2 // preallocated base image
	typeUndo   = 3 // undo/commit image of VirtualBox 1.x
	typeDiff   = 4 // differencing image
)

// header is the part of the VDI header that reading needs, from either
// version.
type header struct {
	version    uint32
	cbHeader   uint32 // 1.x only
	imageType  uint32
	flags      uint32
	offBlocks  int64
	offData    int64
	legacySect uint32 // the legacy geometry's sector size (1.x only)
	lchsSect   uint32 // the LCHS geometry's sector size (1.1+ only), 0 if absent
	hasLCHS    bool
	diskSize   uint64
	blockSize  uint32
	blockExtra uint32
	blocks     uint32
	allocated  uint32
	create     UUID
	modify     UUID
	linkage    UUID
	parentMod  UUID // 1.x only
}

var le = binary.LittleEndian

// readHeader reads and checks the pre-header and header: the checks
// VirtualBox's vdiValidateHeader makes that matter for reading, as errors;
// the ones that do not, as warnings.
func readHeader(r io.ReaderAt, size int64) (*header, []string, error) {
	if size < preHeaderSize+v0HeaderSize {
		return nil, nil, fmt.Errorf("the image is %d bytes, too small for a VDI header: %w", size, blockmap.ErrCorrupt)
	}
	// The largest header this package reads: the pre-header and 1.1+.
	raw := make([]byte, min(size, preHeaderSize+v1PlusHeaderSize))
	if err := readFull(r, raw, 0, "the header"); err != nil {
		return nil, nil, err
	}
	if s := le.Uint32(raw[signatureOff:]); s != signature {
		return nil, nil, fmt.Errorf("no VDI signature at offset %#x (found %#08x): %w", signatureOff, s, blockmap.ErrCorrupt)
	}
	h := &header{version: le.Uint32(raw[versionOff:])}
	var warn []string
	switch {
	case h.version>>16 == 1:
		if len(raw) < preHeaderSize+v1HeaderSize {
			return nil, nil, fmt.Errorf("the image is %d bytes, too small for a version 1 VDI header: %w", size, blockmap.ErrCorrupt)
		}
		w, err := h.parseV1(raw, size)
		if err != nil {
			return nil, nil, err
		}
		warn = append(warn, w...)
	case h.version == v0Version:
		h.parseV0(raw)
	default:
		// VirtualBox reads major version 1 and the old 0.2, nothing else.
		return nil, nil, fmt.Errorf("VDI version %d.%d: %w", h.version>>16, h.version&0xffff, blockmap.ErrUnsupported)
	}
	w, err := h.check()
	if err != nil {
		return nil, nil, err
	}
	return h, append(warn, w...), nil
}

func (h *header) parseV1(raw []byte, size int64) ([]string, error) {
	b := raw[preHeaderSize:]
	h.cbHeader = le.Uint32(b[0x00:])
	h.imageType = le.Uint32(b[0x04:])
	h.flags = le.Uint32(b[0x08:])
	h.offBlocks = int64(le.Uint32(b[0x10c:]))
	h.offData = int64(le.Uint32(b[0x110:]))
	h.legacySect = le.Uint32(b[0x120:])
	h.diskSize = le.Uint64(b[0x128:])
	h.blockSize = le.Uint32(b[0x130:])
	h.blockExtra = le.Uint32(b[0x134:])
	h.blocks = le.Uint32(b[0x138:])
	h.allocated = le.Uint32(b[0x13c:])
	copy(h.create[:], b[0x140:])
	copy(h.modify[:], b[0x150:])
	copy(h.linkage[:], b[0x160:])
	copy(h.parentMod[:], b[0x170:])

	var warn []string
	// VirtualBox refuses a header smaller than VDIHEADER1, whose fields
	// it reads whatever cbHeader says. A larger one than it knows is read
	// as 1.1+, the rest ignored.
	if h.cbHeader < v1HeaderSize {
		return nil, fmt.Errorf("the header size field says %d bytes, less than the %d of a version 1.1 header: %w", h.cbHeader, v1HeaderSize, blockmap.ErrCorrupt)
	}
	if h.cbHeader >= v1PlusHeaderSize {
		if len(raw) < preHeaderSize+v1PlusHeaderSize {
			return nil, fmt.Errorf("the header size field says %d bytes, past the end of the image (%d bytes): %w", h.cbHeader, size, blockmap.ErrCorrupt)
		}
		h.hasLCHS = true
		h.lchsSect = le.Uint32(b[0x18c:])
	}
	if end := int64(preHeaderSize) + int64(h.cbHeader); end > h.offBlocks && h.offBlocks >= preHeaderSize+v1HeaderSize {
		warn = append(warn, fmt.Sprintf("vdi: the header size field says %d bytes, running into the block map at %d; only the %d bytes of the fields VirtualBox knows are read",
			h.cbHeader, h.offBlocks, min(h.cbHeader, v1PlusHeaderSize)))
	}
	if h.offBlocks < preHeaderSize+v1HeaderSize {
		return nil, fmt.Errorf("the block map at %d overlaps the header, which ends at %d: %w", h.offBlocks, preHeaderSize+v1HeaderSize, blockmap.ErrCorrupt)
	}
	if mapEnd := h.offBlocks + 4*int64(h.blocks); h.offData < mapEnd {
		return nil, fmt.Errorf("the data at %d starts inside the block map of %d entries at %d, which ends at %d: %w",
			h.offData, h.blocks, h.offBlocks, mapEnd, blockmap.ErrCorrupt)
	}
	return warn, nil
}

func (h *header) parseV0(raw []byte) {
	b := raw[preHeaderSize:]
	h.imageType = le.Uint32(b[0x00:])
	h.flags = le.Uint32(b[0x04:])
	h.diskSize = le.Uint64(b[0x118:])
	h.blockSize = le.Uint32(b[0x120:])
	h.blocks = le.Uint32(b[0x124:])
	h.allocated = le.Uint32(b[0x128:])
	copy(h.create[:], b[0x12c:])
	copy(h.modify[:], b[0x13c:])
	copy(h.linkage[:], b[0x14c:])
	h.offBlocks = preHeaderSize + v0HeaderSize
	h.offData = h.offBlocks + 4*int64(h.blocks)
}

// check validates what the version-independent fields say.
func (h *header) check() ([]string, error) {
	var warn []string
	switch h.imageType {
	case typeNormal, typeFixed, typeDiff:
	case typeUndo:
		// VirtualBox 1.x kept the changes to an immutable disk in one; its
		// current code asserts on the type, so no reader defines it.
		return nil, fmt.Errorf("image type 3 (undo), the undo image of early VirtualBox, which later versions no longer read: %w", blockmap.ErrUnsupported)
	default:
		return nil, fmt.Errorf("unknown image type %d: %w", h.imageType, blockmap.ErrCorrupt)
	}
	bs := h.blockSize
	if bs < minBlockSize || bits.OnesCount32(bs) != 1 {
		return nil, fmt.Errorf("block size %d is not a power of two of at least %d: %w", bs, minBlockSize, blockmap.ErrCorrupt)
	}
	if x := h.blockExtra; x != 0 && bits.OnesCount32(x) != 1 {
		return nil, fmt.Errorf("block extra data size %d is neither 0 nor a power of two: %w", x, blockmap.ErrCorrupt)
	}
	if covered := uint64(h.blocks) * uint64(bs); covered < h.diskSize {
		return nil, fmt.Errorf("the block map's %d entries of %d-byte blocks cover %d bytes, less than the disk size %d: %w",
			h.blocks, bs, covered, h.diskSize, blockmap.ErrCorrupt)
	}
	if h.allocated > h.blocks {
		warn = append(warn, fmt.Sprintf("vdi: the header counts %d allocated blocks, more than its %d blocks (VirtualBox refuses such an image; qemu reads it)", h.allocated, h.blocks))
	}
	// Only ZERO_EXPAND (1) and the bits of the fixed and diff image flags
	// (0x100, 0x200) are defined; none changes how blocks are read.
	if f := h.flags &^ 0x301; f != 0 {
		warn = append(warn, fmt.Sprintf("vdi: unknown image flags %#x (VirtualBox refuses the image; they do not change how it reads)", h.flags))
	}
	if h.version>>16 == 1 && h.legacySect != sectorSize {
		warn = append(warn, fmt.Sprintf("vdi: the legacy geometry's sector size is %d, not %d (qemu refuses the image)", h.legacySect, sectorSize))
	}
	if h.hasLCHS && h.lchsSect != sectorSize {
		warn = append(warn, fmt.Sprintf("vdi: the LCHS geometry's sector size is %d, not %d (VirtualBox refuses the image)", h.lchsSect, sectorSize))
	}
	if h.create.IsZero() || h.modify.IsZero() {
		warn = append(warn, fmt.Sprintf("vdi: a null creation or modification UUID (%s, %s); VirtualBox refuses the image", h.create, h.modify))
	}
	return warn, nil
}

// readFull reads len(b) bytes at off, naming what it reads on failure.
func readFull(r io.ReaderAt, b []byte, off int64, what string) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("reading %s at %d: short read (%d of %d bytes): %w", what, off, n, len(b), blockmap.ErrCorrupt)
	}
	return fmt.Errorf("reading %s at %d: %w", what, off, err)
}
