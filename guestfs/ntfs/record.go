package ntfs

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Attribute types this reader uses.
const (
	atStandardInfo  = 0x10
	atAttributeList = 0x20
	atFileName      = 0x30
	atVolumeName    = 0x60
	atVolumeInfo    = 0x70
	atData          = 0x80
	atIndexRoot     = 0x90
	atIndexAlloc    = 0xa0
	atReparsePoint  = 0xc0
	atEA            = 0xe0
	atEnd           = 0xffffffff
)

// Attribute header flags.
const (
	attrCompressedMask = 0x00ff
	attrEncrypted      = 0x4000
	attrSparse         = 0x8000
)

// Record header flags.
const (
	recInUse = 0x0001
	recDir   = 0x0002
)

// refMask keeps the record number of a file reference, dropping the
// sequence number in its top 16 bits.
const refMask = 1<<48 - 1

// record is one fixed-up MFT record and the headers of its attributes.
type record struct {
	num       uint64
	flags     uint16
	seq       uint16
	linkCount uint16
	base      uint64 // the base record of an extension record; 0 for a base record
	attrs     []attr
}

// attr is one attribute's header, with its value (resident) or mapping
// pairs (non-resident) sliced from the record.
type attr struct {
	typ      uint32
	name     string // UTF-16 decoded; "" for the unnamed attribute
	flags    uint16
	instance uint16
	nonRes   bool

	value []byte // resident

	lowVCN, highVCN int64 // non-resident
	mapping         []byte
	cuShift         uint8
	allocSize       int64
	dataSize        int64
	initSize        int64
	compSize        int64
}

// parseRecord checks and parses an MFT record read from the volume; b is
// modified in place by the fixup and kept by the returned record's
// attributes.
func parseRecord(b []byte, num uint64) (*record, error) {
	if err := applyFixup(b, "FILE"); err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", num, err)
	}
	r := &record{
		num:       num,
		seq:       binary.LittleEndian.Uint16(b[0x10:]),
		linkCount: binary.LittleEndian.Uint16(b[0x12:]),
		flags:     binary.LittleEndian.Uint16(b[0x16:]),
		base:      binary.LittleEndian.Uint64(b[0x20:]) & refMask,
	}
	first := int(binary.LittleEndian.Uint16(b[0x14:]))
	used := int(binary.LittleEndian.Uint32(b[0x18:]))
	if used > len(b) || used < 0 {
		used = len(b)
	}
	if first < 0x18 || first+4 > used {
		return nil, fmt.Errorf("ntfs: MFT record %d: first attribute at %d of %d bytes: %w", num, first, used, guestfs.ErrCorrupt)
	}
	for off := first; ; {
		if off+4 > used {
			return nil, fmt.Errorf("ntfs: MFT record %d: attributes run past the end: %w", num, guestfs.ErrCorrupt)
		}
		typ := binary.LittleEndian.Uint32(b[off:])
		if typ == atEnd {
			break
		}
		a, n, err := parseAttr(b[off:used])
		if err != nil {
			return nil, fmt.Errorf("ntfs: MFT record %d: attribute at %d: %w", num, off, err)
		}
		r.attrs = append(r.attrs, a)
		off += n
	}
	return r, nil
}

// parseAttr parses the attribute header at the start of b and returns it
// with its length.
func parseAttr(b []byte) (attr, int, error) {
	var a attr
	if len(b) < 16 {
		return a, 0, fmt.Errorf("header of %d bytes: %w", len(b), guestfs.ErrCorrupt)
	}
	a.typ = binary.LittleEndian.Uint32(b)
	n := int(binary.LittleEndian.Uint32(b[4:]))
	if n < 16 || n > len(b) || n%8 != 0 {
		return a, 0, fmt.Errorf("type %#x: length %d of %d: %w", a.typ, n, len(b), guestfs.ErrCorrupt)
	}
	b = b[:n]
	a.nonRes = b[8] != 0
	nameLen := int(b[9])
	nameOff := int(binary.LittleEndian.Uint16(b[10:]))
	a.flags = binary.LittleEndian.Uint16(b[12:])
	a.instance = binary.LittleEndian.Uint16(b[14:])
	if nameLen > 0 {
		if nameOff+2*nameLen > n {
			return a, 0, fmt.Errorf("type %#x: name past the attribute: %w", a.typ, guestfs.ErrCorrupt)
		}
		a.name = decodeName(b[nameOff : nameOff+2*nameLen])
	}
	if !a.nonRes {
		if n < 24 {
			return a, 0, fmt.Errorf("type %#x: resident header of %d bytes: %w", a.typ, n, guestfs.ErrCorrupt)
		}
		vlen := int(binary.LittleEndian.Uint32(b[16:]))
		voff := int(binary.LittleEndian.Uint16(b[20:]))
		if vlen < 0 || voff < 24 || voff > n || vlen > n-voff {
			return a, 0, fmt.Errorf("type %#x: value of %d bytes at %d past the attribute: %w", a.typ, vlen, voff, guestfs.ErrCorrupt)
		}
		a.value = b[voff : voff+vlen]
		a.dataSize = int64(vlen)
		a.initSize = int64(vlen)
		return a, n, nil
	}
	if n < 64 {
		return a, 0, fmt.Errorf("type %#x: non-resident header of %d bytes: %w", a.typ, n, guestfs.ErrCorrupt)
	}
	a.lowVCN = int64(binary.LittleEndian.Uint64(b[16:]))
	a.highVCN = int64(binary.LittleEndian.Uint64(b[24:]))
	moff := int(binary.LittleEndian.Uint16(b[32:]))
	a.cuShift = b[34]
	a.allocSize = int64(binary.LittleEndian.Uint64(b[40:]))
	a.dataSize = int64(binary.LittleEndian.Uint64(b[48:]))
	a.initSize = int64(binary.LittleEndian.Uint64(b[56:]))
	if a.flags&(attrCompressedMask|attrSparse) != 0 && n >= 72 {
		a.compSize = int64(binary.LittleEndian.Uint64(b[64:]))
	}
	if moff < 64 || moff > n {
		return a, 0, fmt.Errorf("type %#x: mapping pairs at %d: %w", a.typ, moff, guestfs.ErrCorrupt)
	}
	if a.lowVCN < 0 || a.highVCN < a.lowVCN-1 || a.allocSize < 0 || a.dataSize < 0 || a.initSize < 0 || a.compSize < 0 {
		return a, 0, fmt.Errorf("type %#x: VCNs %d-%d, sizes %d/%d/%d: %w", a.typ, a.lowVCN, a.highVCN, a.allocSize, a.dataSize, a.initSize, guestfs.ErrCorrupt)
	}
	a.mapping = b[moff:]
	return a, n, nil
}
