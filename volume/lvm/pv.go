package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

var (
	// ErrNoLabel: the volume has no LVM2 label in its first four sectors.
	ErrNoLabel = errors.New("lvm: no LVM2 label")
	// ErrCorrupt: an LVM2 structure is there but does not check out.
	ErrCorrupt = errors.New("lvm: corrupt LVM2 metadata")
	// ErrUnsupported: a logical volume whose segments this package does
	// not map (thin, snapshot, RAID, cache, ...) or that lacks a PV.
	ErrUnsupported = errors.New("lvm: unsupported logical volume")
)

// On-disk constants of the LVM2 text format (lib/label, lib/format_text).
const (
	labelID        = "LABELONE"
	labelType      = "LVM2 001"
	labelScan      = 4 // sectors searched for the label
	mdaHeaderSize  = 512
	mdaMagic       = "\x20LVM2\x20x[5A%r0N*>"
	mdaVersion     = 1
	rawLocnIgnored = 1
	initialCRC     = 0xf597a6cf
	uuidLen        = 32
)

// lvmCRC is LVM's calc_crc: CRC-32 (IEEE) from an initial value, without
// the final inversion.
func lvmCRC(init uint32, b []byte) uint32 {
	return ^crc32.Update(^init, crc32.IEEETable, b)
}

// Area is a data or metadata area a PV header lists, in bytes from the
// start of the PV. A data area of Size 0 runs to the end of the device.
type Area struct {
	Offset, Size int64
}

// MetadataText says where the current metadata text of a metadata area
// lies: at Offset from the area's start, Size bytes, continuing after the
// area's header when it runs past the area's end (Wrapped).
type MetadataText struct {
	Area         Area
	Offset, Size int64
	Wrapped      bool
	Seqno        int64
}

// PV is an LVM2 physical volume: its label, and the volume group
// metadata it carries.
type PV struct {
	UUID       string // as LVM prints it, 6-4-4-4-4-4-6
	DeviceSize int64  // what the PV header says the device holds, bytes
	Size       int64  // what the volume holds, bytes
	DataAreas  []Area
	// MetadataAreas are the metadata areas the header lists; Texts the
	// metadata found in them (an area holding none, or whose text fails
	// its checks, has none).
	MetadataAreas []Area
	Texts         []MetadataText
	// VGName, VGUUID and Seqno name the volume group of the newest
	// metadata on this PV; empty for a PV without metadata (an orphan,
	// or one created with --metadatacopies 0: Assemble finds its VG
	// through the other PVs).
	VGName, VGUUID string
	Seqno          int64
	// PEStart is where the first physical extent lies, bytes: pe_start
	// from the metadata, or the first data area.
	PEStart  int64
	Warnings []string

	r  io.ReaderAt
	vg *vgMeta
}

func (pv *PV) warn(format string, args ...any) {
	pv.Warnings = append(pv.Warnings, fmt.Sprintf(format, args...))
}

// ReadPV reads the LVM2 label, PV header and metadata of a volume of size
// bytes. A volume without a label is ErrNoLabel. The PV keeps r: logical
// volumes read through it.
func ReadPV(r io.ReaderAt, size int64) (*PV, error) {
	var head [labelScan * 512]byte
	n := min(int64(len(head)), size)
	if n < 512 {
		return nil, fmt.Errorf("lvm: volume of %d bytes: %w", size, ErrNoLabel)
	}
	if err := readFull(r, head[:n], 0); err != nil {
		return nil, fmt.Errorf("lvm: reading the label sectors: %w", err)
	}
	var labelErr error
	for s := int64(0); s*512 < n; s++ {
		sec := head[s*512 : (s+1)*512]
		if string(sec[:8]) != labelID {
			continue
		}
		pv, err := readLabel(r, size, sec, s)
		if err == nil {
			return pv, nil
		}
		labelErr = err
	}
	if labelErr != nil {
		return nil, labelErr
	}
	return nil, ErrNoLabel
}

// readLabel reads the label in sector s and the PV it describes.
func readLabel(r io.ReaderAt, size int64, sec []byte, s int64) (*PV, error) {
	le := binary.LittleEndian
	if got := le.Uint64(sec[8:]); got != uint64(s) {
		return nil, fmt.Errorf("lvm: label in sector %d says sector %d: %w", s, got, ErrCorrupt)
	}
	if lvmCRC(initialCRC, sec[20:]) != le.Uint32(sec[16:]) {
		return nil, fmt.Errorf("lvm: label in sector %d: CRC mismatch: %w", s, ErrCorrupt)
	}
	if string(sec[24:32]) != labelType {
		return nil, fmt.Errorf("lvm: label type %q is not %q: %w", sec[24:32], labelType, ErrCorrupt)
	}
	off := le.Uint32(sec[20:])
	if off < 32 || off > 512-uuidLen-8-16 {
		return nil, fmt.Errorf("lvm: PV header offset %d: %w", off, ErrCorrupt)
	}
	h := sec[off:]
	id := h[:uuidLen]
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '!' || c == '#') {
			return nil, fmt.Errorf("lvm: PV UUID %q: %w", id, ErrCorrupt)
		}
	}
	pv := &PV{UUID: formatUUID(string(id)), Size: size, r: r}
	pv.DeviceSize = int64(le.Uint64(h[uuidLen:]))
	if pv.DeviceSize < 0 {
		return nil, fmt.Errorf("lvm: PV %s: device size %d: %w", pv.UUID, uint64(pv.DeviceSize), ErrCorrupt)
	}
	locs := h[uuidLen+8:]
	// Two lists of (offset, size) pairs, each ending with a zero offset.
	list := func() ([]Area, error) {
		var as []Area
		for {
			if len(locs) < 16 {
				return nil, fmt.Errorf("lvm: PV %s: area list runs past the label sector: %w", pv.UUID, ErrCorrupt)
			}
			o, sz := le.Uint64(locs), le.Uint64(locs[8:])
			locs = locs[16:]
			if o == 0 {
				return as, nil
			}
			if o > uint64(size) || sz > uint64(size) {
				return nil, fmt.Errorf("lvm: PV %s: area %d+%d outside the volume of %d bytes: %w", pv.UUID, o, sz, size, ErrCorrupt)
			}
			as = append(as, Area{int64(o), int64(sz)})
		}
	}
	var err error
	if pv.DataAreas, err = list(); err != nil {
		return nil, err
	}
	if pv.MetadataAreas, err = list(); err != nil {
		return nil, err
	}
	if pv.DeviceSize > size {
		pv.warn("PV %s: the header says the device holds %d bytes, the volume holds %d", pv.UUID, pv.DeviceSize, size)
	}
	if len(pv.DataAreas) > 0 {
		pv.PEStart = pv.DataAreas[0].Offset
	}
	for _, a := range pv.MetadataAreas {
		text, mt, err := readMetadata(r, size, a)
		if err != nil {
			pv.warn("PV %s: metadata area at %d: %v", pv.UUID, a.Offset, err)
			continue
		}
		if text == nil {
			continue // an empty or ignored area
		}
		root, err := parseConfig(string(text))
		if err == nil {
			var vg *vgMeta
			if vg, err = parseVG(root); err == nil {
				mt.Seqno = vg.seqno
				pv.Texts = append(pv.Texts, mt)
				pv.adopt(vg)
				continue
			}
		}
		pv.warn("PV %s: metadata area at %d: %v", pv.UUID, a.Offset, err)
	}
	return pv, nil
}

// adopt takes vg as the PV's metadata when it is newer than what it has.
func (pv *PV) adopt(vg *vgMeta) {
	if pv.vg != nil {
		if pv.vg.uuid != vg.uuid {
			pv.warn("PV %s: its metadata areas describe two volume groups, %s and %s; using the newer", pv.UUID, pv.vg.name, vg.name)
		} else if pv.vg.seqno != vg.seqno {
			pv.warn("PV %s: its metadata areas hold seqno %d and %d; using the newer", pv.UUID, pv.vg.seqno, vg.seqno)
		}
		if vg.seqno <= pv.vg.seqno {
			return
		}
	}
	pv.vg = vg
	pv.VGName, pv.VGUUID, pv.Seqno = vg.name, vg.uuid, vg.seqno
	for _, m := range vg.pvs {
		if m.uuid == pv.UUID {
			pv.PEStart = m.peStart
		}
	}
}

// readMetadata reads the current metadata text of the metadata area a: it
// checks the area header (CRC, magic, version, place) and the text's
// CRC, and follows a text that wraps around the end of the circular
// buffer. It returns nil text for an area that holds none.
func readMetadata(r io.ReaderAt, size int64, a Area) ([]byte, MetadataText, error) {
	mt := MetadataText{Area: a}
	if a.Size < mdaHeaderSize || a.Offset > size-a.Size {
		return nil, mt, fmt.Errorf("area of %d bytes at %d does not fit the volume: %w", a.Size, a.Offset, ErrCorrupt)
	}
	var h [mdaHeaderSize]byte
	if err := readFull(r, h[:], a.Offset); err != nil {
		return nil, mt, err
	}
	le := binary.LittleEndian
	switch {
	case lvmCRC(initialCRC, h[4:]) != le.Uint32(h[:]):
		return nil, mt, fmt.Errorf("header CRC mismatch: %w", ErrCorrupt)
	case string(h[4:20]) != mdaMagic:
		return nil, mt, fmt.Errorf("no metadata area magic: %w", ErrCorrupt)
	case le.Uint32(h[20:]) != mdaVersion:
		return nil, mt, fmt.Errorf("metadata area version %d: %w", le.Uint32(h[20:]), ErrCorrupt)
	case int64(le.Uint64(h[24:])) != a.Offset:
		return nil, mt, fmt.Errorf("header says it starts at %d: %w", le.Uint64(h[24:]), ErrCorrupt)
	}
	asize := le.Uint64(h[32:])
	if asize < mdaHeaderSize || asize > uint64(a.Size) {
		return nil, mt, fmt.Errorf("header says the area holds %d bytes, the PV header %d: %w", asize, a.Size, ErrCorrupt)
	}
	// raw_locns[0] is the committed metadata.
	off, tsize := le.Uint64(h[40:]), le.Uint64(h[48:])
	crc, flags := le.Uint32(h[56:]), le.Uint32(h[60:])
	if off == 0 && tsize == 0 || flags&rawLocnIgnored != 0 {
		return nil, mt, nil
	}
	if off < mdaHeaderSize || off >= asize || tsize == 0 || tsize > asize-mdaHeaderSize {
		return nil, mt, fmt.Errorf("metadata text of %d bytes at %d does not fit the %d-byte area: %w", tsize, off, asize, ErrCorrupt)
	}
	if tsize > maxTextSize {
		return nil, mt, fmt.Errorf("metadata text of %d bytes: more than %d: %w", tsize, maxTextSize, ErrCorrupt)
	}
	var wrap uint64
	if off+tsize > asize {
		wrap = off + tsize - asize
	}
	if wrap > off-mdaHeaderSize {
		return nil, mt, fmt.Errorf("metadata text wraps over itself: %w", ErrCorrupt)
	}
	text := make([]byte, tsize)
	if err := readFull(r, text[:tsize-wrap], a.Offset+int64(off)); err != nil {
		return nil, mt, err
	}
	if wrap > 0 {
		if err := readFull(r, text[tsize-wrap:], a.Offset+mdaHeaderSize); err != nil {
			return nil, mt, err
		}
	}
	if lvmCRC(initialCRC, text) != crc {
		return nil, mt, fmt.Errorf("metadata text CRC mismatch: %w", ErrCorrupt)
	}
	mt.Offset, mt.Size, mt.Wrapped = int64(off), int64(tsize), wrap > 0
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	return text, mt, nil
}

// readFull reads len(b) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
