package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/ovfmount/ovfmount/internal/readat"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const (
	sectorSize = 512
	footerSize = 512
	// Virtual PC before 2004 wrote footers one byte short (the reserved
	// area is 426 bytes instead of 427).
	shortFooterSize = 511

	diskFixed    = 2
	diskDynamic  = 3
	diskDiffer   = 4
	checksumOff  = 64
	cookieFooter = "conectix"

	// maxSectors is the largest disk the format allows (2040 GiB); qemu
	// refuses anything bigger.
	maxSectors = 0xff000000
)

// footer is the fields of a VHD footer that decide how the image is read.
type footer struct {
	raw        []byte // the bytes as read (512, or 511 for an old footer)
	at         int64  // where it was read
	dataOffset uint64
	creator    [4]byte
	curSize    uint64
	cyls       uint16
	heads      uint8
	spt        uint8
	diskType   uint32
	stored     uint32 // checksum field
	computed   uint32 // checksum of raw
}

func (f *footer) sumOK() bool { return f.stored == f.computed }

// checksum is the VHD checksum: the one's complement of the byte sum, with
// the checksum field itself (4 bytes at field) counted as zero.
func checksum(b []byte, field int) uint32 {
	var s uint32
	for i, c := range b {
		if i >= field && i < field+4 {
			continue
		}
		s += uint32(c)
	}
	return ^s
}

func parseFooter(raw []byte, at int64) *footer {
	if len(raw) < shortFooterSize || string(raw[:8]) != cookieFooter {
		return nil
	}
	be := binary.BigEndian
	f := &footer{
		raw:        raw,
		at:         at,
		dataOffset: be.Uint64(raw[16:]),
		curSize:    be.Uint64(raw[48:]),
		cyls:       be.Uint16(raw[56:]),
		heads:      raw[58],
		spt:        raw[59],
		diskType:   be.Uint32(raw[60:]),
		stored:     be.Uint32(raw[checksumOff:]),
		computed:   checksum(raw, checksumOff),
	}
	copy(f.creator[:], raw[28:32])
	return f
}

// readFooters reads the footer at the end of the image (a 512-byte one, or
// failing that a 511-byte one) and the copy at offset 0. Either may be nil.
func readFooters(r io.ReaderAt, size int64) (tail, head *footer, err error) {
	if size < shortFooterSize {
		return nil, nil, fmt.Errorf("%d bytes is too small to hold a footer: %w", size, blockmap.ErrCorrupt)
	}
	n := int64(min(size, footerSize))
	buf := make([]byte, n)
	if err := readFull(r, buf, size-n, "the footer at the end"); err != nil {
		return nil, nil, err
	}
	if n == footerSize {
		tail = parseFooter(buf, size-n)
	}
	if tail == nil {
		tail = parseFooter(buf[n-shortFooterSize:], size-shortFooterSize)
	}
	if size >= footerSize {
		hb := make([]byte, footerSize)
		if err := readFull(r, hb, 0, "the footer copy at offset 0"); err != nil {
			return nil, nil, err
		}
		head = parseFooter(hb, 0)
	}
	if tail != nil && head != nil && tail.at == 0 {
		head = nil // a footer-only file: the same bytes, read twice
	}
	return tail, head, nil
}

// chooseFooter decides which footer to trust. The one at the end is the
// primary copy; fixed disks have no other, and offset 0 of a fixed disk is
// data that may well look like a footer (a VHD stored inside a VHD).
func chooseFooter(tail, head *footer) (*footer, []string, error) {
	var warn []string
	badSum := func(f *footer, where string) string {
		return fmt.Sprintf("vhd: the footer %s has a bad checksum (stored %#08x, computed %#08x)", where, f.stored, f.computed)
	}
	switch {
	case tail == nil && head == nil:
		return nil, nil, fmt.Errorf("no %q footer at the end or at offset 0: %w", cookieFooter, blockmap.ErrCorrupt)
	case tail != nil && tail.diskType == diskFixed && (tail.sumOK() || head == nil || !head.sumOK()):
		if !tail.sumOK() {
			warn = append(warn, badSum(tail, "at the end")+"; reading on")
		}
		return tail, warn, nil
	case tail != nil && tail.sumOK():
		if head == nil {
			warn = append(warn, "vhd: no footer copy at offset 0, which a dynamic disk should have")
			return tail, warn, nil
		}
		if !head.sumOK() {
			warn = append(warn, badSum(head, "copy at offset 0")+"; using the footer at the end")
			return tail, warn, nil
		}
		if d := layoutDiff(tail, head); d != "" {
			return nil, nil, fmt.Errorf("the footer copies at offset 0 and at the end both pass their checksums but disagree on %s: %w", d, blockmap.ErrCorrupt)
		}
		if !bytes.Equal(tail.raw[:shortFooterSize], head.raw[:shortFooterSize]) {
			warn = append(warn, "vhd: the footer copies at offset 0 and at the end differ in fields that do not affect reading")
		}
		return tail, warn, nil
	case head != nil && head.sumOK():
		if head.diskType == diskFixed {
			return nil, nil, fmt.Errorf("the only valid footer is at offset 0 and says fixed disk, whose footer must be at the end: %w", blockmap.ErrCorrupt)
		}
		if tail == nil {
			warn = append(warn, "vhd: no footer at the end (truncated image?); using the copy at offset 0")
		} else {
			warn = append(warn, badSum(tail, "at the end")+"; using the copy at offset 0")
		}
		return head, warn, nil
	}
	// No copy passes its checksum: read on from the primary one if the
	// copies at least agree on the layout.
	if tail == nil {
		if head.diskType == diskFixed {
			return nil, nil, fmt.Errorf("the only footer is at offset 0 and says fixed disk, whose footer must be at the end: %w", blockmap.ErrCorrupt)
		}
		warn = append(warn, "vhd: no footer at the end (truncated image?); using the copy at offset 0",
			badSum(head, "at offset 0")+"; reading on")
		return head, warn, nil
	}
	if head != nil {
		if d := layoutDiff(tail, head); d != "" {
			return nil, nil, fmt.Errorf("both footer copies have bad checksums and they disagree on %s: %w", d, blockmap.ErrCorrupt)
		}
	}
	warn = append(warn, badSum(tail, "at the end")+"; reading on")
	return tail, warn, nil
}

// layoutDiff names the first field that decides how the image is read and
// differs between the two footers, or returns "".
func layoutDiff(tail, head *footer) string {
	const both = " (%v at offset 0, %v at the end)"
	switch {
	case tail.diskType != head.diskType:
		return fmt.Sprintf("the disk type"+both, head.diskType, tail.diskType)
	case tail.dataOffset != head.dataOffset:
		return fmt.Sprintf("the dynamic header offset"+both, head.dataOffset, tail.dataOffset)
	case tail.curSize != head.curSize:
		return fmt.Sprintf("current_size"+both, head.curSize, tail.curSize)
	case tail.cyls != head.cyls || tail.heads != head.heads || tail.spt != head.spt:
		return fmt.Sprintf("the geometry"+both, head.geometry(), tail.geometry())
	case tail.creator != head.creator:
		return fmt.Sprintf("the creator application"+both, strconv.Quote(string(head.creator[:])), strconv.Quote(string(tail.creator[:])))
	}
	return ""
}

func (f *footer) geometry() string { return fmt.Sprintf("%d/%d/%d", f.cyls, f.heads, f.spt) }

// virtualSize applies qemu's rule. Virtual PC, and qemu when it writes the
// "qemu" creator, size the disk by its CHS geometry (qemu rounds the size up
// to a geometry and stores that as current_size too); every other writer
// means current_size. A maximal geometry cannot describe a big disk, so
// there current_size wins for everyone.
func virtualSize(f *footer) (size int64, warn []string, err error) {
	chs := uint64(f.cyls) * uint64(f.heads) * uint64(f.spt)
	cur := f.curSize / sectorSize
	sectors := cur
	maxCHS := f.cyls == 65535 && f.heads == 16 && f.spt == 255
	useCHS := !maxCHS && (f.creator == [4]byte{'v', 'p', 'c', ' '} || f.creator == [4]byte{'q', 'e', 'm', 'u'})
	if useCHS {
		sectors = chs
	}
	// A maximal geometry only says "too big for CHS": no mismatch to report.
	if chs != cur && !maxCHS {
		how := fmt.Sprintf("using current_size for creator %q", f.creator[:])
		if useCHS {
			how = fmt.Sprintf("using CHS as qemu does for creator %q", f.creator[:])
		}
		warn = append(warn, fmt.Sprintf("vhd: size from CHS %d differs from current_size %d; %s", chs*sectorSize, f.curSize, how))
	}
	if !useCHS && f.curSize%sectorSize != 0 {
		warn = append(warn, fmt.Sprintf("vhd: current_size %d is not a whole number of sectors; the last %d bytes are dropped, as qemu does", f.curSize, f.curSize%sectorSize))
	}
	if sectors > maxSectors {
		return 0, warn, fmt.Errorf("virtual size of %d sectors exceeds the VHD limit of %d (2040 GiB): %w", sectors, maxSectors, blockmap.ErrCorrupt)
	}
	return int64(sectors) * sectorSize, warn, nil
}

// readFull reads exactly len(p) bytes at off. The caller has checked that
// they lie inside the image, so a short read means the source shrank or lied.
func readFull(r io.ReaderAt, p []byte, off int64, what string) error {
	err := readat.Full(r, p, off)
	var short *readat.ShortError
	if errors.As(err, &short) {
		return fmt.Errorf("reading %s at %d: got %d of %d bytes: %w", what, off, short.Got, short.Want, blockmap.ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("reading %s at %d: %w", what, off, err)
	}
	return nil
}
