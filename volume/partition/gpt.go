package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

const (
	gptSignature   = "EFI PART"
	gptHeaderSize  = 92  // sizeof(gpt_header) in the kernel
	gptEntrySize   = 128 // the only entry size the kernel accepts
	maxEntryArray  = 4 << 20
	maxGPTEntries  = maxPartNumber // entries past index 254 get no partition
	entryChunkSize = 64 << 10
	attrLegacyBoot = 1 << 2
)

// gptHeader is a validated GPT header with the entries that can become
// partitions (at most the first 255).
type gptHeader struct {
	ssz                     int64
	myLBA, altLBA           uint64
	firstUsable, lastUsable uint64
	entriesLBA              uint64
	numEntries, entriesCRC  uint32
	diskGUID                [16]byte
	entries                 []byte // first min(numEntries, 255) entries
	ignored                 int    // non-empty entries past the 255th
	headerOK                bool   // the header itself passed its checks
	headerCRC               uint32
	entrySize               uint32
	lastLBA                 uint64
}

var errGPT = errors.New("invalid GPT header")

// loadGPT reads and checks the GPT header at lba with sectors of ssz
// bytes, as the kernel's is_gpt_valid. A header whose own fields check
// out but whose entry array does not is returned with headerOK set and an
// error, so that its alternate_lba can still be followed.
func loadGPT(r io.ReaderAt, size, ssz int64, lba uint64) (*gptHeader, error) {
	lastLBA := uint64(size/ssz) - 1
	if lba == 0 || lba > lastLBA {
		return nil, fmt.Errorf("LBA %d is outside the disk (last LBA %d): %w", lba, lastLBA, errGPT)
	}
	buf := make([]byte, ssz)
	if err := readFull(r, buf, int64(lba)*ssz); err != nil {
		return nil, fmt.Errorf("reading LBA %d: %w", lba, err)
	}
	if string(buf[:8]) != gptSignature {
		return nil, fmt.Errorf("no %q signature at LBA %d: %w", gptSignature, lba, errGPT)
	}
	le := binary.LittleEndian
	hsize := le.Uint32(buf[12:])
	if hsize < gptHeaderSize || int64(hsize) > ssz {
		return nil, fmt.Errorf("header size %d at LBA %d: %w", hsize, lba, errGPT)
	}
	crc := le.Uint32(buf[16:])
	binary.LittleEndian.PutUint32(buf[16:], 0)
	if crc32.ChecksumIEEE(buf[:hsize]) != crc {
		return nil, fmt.Errorf("header CRC mismatch at LBA %d: %w", lba, errGPT)
	}
	h := &gptHeader{
		ssz:         ssz,
		myLBA:       le.Uint64(buf[24:]),
		altLBA:      le.Uint64(buf[32:]),
		firstUsable: le.Uint64(buf[40:]),
		lastUsable:  le.Uint64(buf[48:]),
		entriesLBA:  le.Uint64(buf[72:]),
		numEntries:  le.Uint32(buf[80:]),
		entrySize:   le.Uint32(buf[84:]),
		entriesCRC:  le.Uint32(buf[88:]),
		headerCRC:   crc,
		lastLBA:     lastLBA,
	}
	copy(h.diskGUID[:], buf[56:72])
	switch {
	case h.myLBA != lba:
		return nil, fmt.Errorf("my_lba %d at LBA %d: %w", h.myLBA, lba, errGPT)
	case h.firstUsable > lastLBA || h.lastUsable > lastLBA:
		return nil, fmt.Errorf("usable LBAs %d-%d past the last LBA %d: %w", h.firstUsable, h.lastUsable, lastLBA, errGPT)
	case h.lastUsable < h.firstUsable:
		return nil, fmt.Errorf("last usable LBA %d before first %d: %w", h.lastUsable, h.firstUsable, errGPT)
	case h.entrySize != gptEntrySize:
		return nil, fmt.Errorf("partition entry size %d: %w", h.entrySize, errGPT)
	}
	h.headerOK = true
	if err := h.readEntries(r, size); err != nil {
		return h, err
	}
	return h, nil
}

// readEntries checks the entry array's CRC, reading it in bounded chunks,
// and keeps the entries that can become partitions.
func (h *gptHeader) readEntries(r io.ReaderAt, size int64) error {
	total := uint64(h.numEntries) * gptEntrySize
	switch {
	case total == 0:
		return fmt.Errorf("no partition entries: %w", errGPT)
	case total > maxEntryArray:
		return fmt.Errorf("partition entry array of %d bytes is larger than the kernel reads (%d): %w", total, maxEntryArray, errGPT)
	case h.entriesLBA > h.lastLBA || h.entriesLBA*uint64(h.ssz)+total > uint64(size):
		return fmt.Errorf("partition entry array at LBA %d runs past the disk: %w", h.entriesLBA, errGPT)
	}
	keep := min(uint64(h.numEntries), maxGPTEntries) * gptEntrySize
	h.entries = make([]byte, 0, keep)
	chunk := make([]byte, min(total, entryChunkSize))
	var crc uint32
	off := int64(h.entriesLBA) * h.ssz
	for done := uint64(0); done < total; {
		b := chunk[:min(uint64(len(chunk)), total-done)]
		if err := readFull(r, b, off+int64(done)); err != nil {
			return fmt.Errorf("reading partition entries: %w", err)
		}
		crc = crc32.Update(crc, crc32.IEEETable, b)
		if n := uint64(len(h.entries)); n < keep {
			h.entries = append(h.entries, b[:min(uint64(len(b)), keep-n)]...)
		}
		for i := uint64(0); i+gptEntrySize <= uint64(len(b)); i += gptEntrySize {
			if done+i >= keep && !zero(b[i:i+16]) {
				h.ignored++
			}
		}
		done += uint64(len(b))
	}
	if crc != h.entriesCRC {
		return fmt.Errorf("partition entry array CRC mismatch: %w", errGPT)
	}
	return nil
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readGPT finds a valid GPT, primary first, with 512-byte and then
// 4096-byte sectors, as find_valid_gpt does for the device's sector size.
func readGPT(r io.ReaderAt, size int64) (*Table, error) {
	var firstErr error
	note := func(err error) {
		if firstErr == nil && err != nil {
			firstErr = err
		}
	}
	var alternates []*gptHeader // headers that named an alternate LBA
	for _, ssz := range []int64{512, 4096} {
		if size < 3*ssz {
			continue
		}
		p, err := loadGPT(r, size, ssz, 1)
		if err == nil {
			t := &Table{}
			a, aerr := loadGPT(r, size, ssz, p.altLBA)
			if aerr != nil {
				t.warn("Alternate GPT is invalid, using primary GPT.")
			} else {
				compareGPTs(t, p, a)
			}
			return t.fromGPT(p), nil
		}
		note(err)
		if p != nil && p.headerOK {
			alternates = append(alternates, p)
		}
	}
	// The primary is bad: the backup at the last LBA, or where a primary
	// whose header was sound says it is.
	for _, ssz := range []int64{512, 4096} {
		if size < 3*ssz {
			continue
		}
		lbas := []uint64{uint64(size/ssz) - 1}
		for _, p := range alternates {
			if p.ssz == ssz && p.altLBA != lbas[0] {
				lbas = append(lbas, p.altLBA)
			}
		}
		for _, lba := range lbas {
			a, err := loadGPT(r, size, ssz, lba)
			if err != nil {
				note(err)
				continue
			}
			t := &Table{}
			t.warn("Primary GPT is invalid, using alternate GPT.")
			if a.myLBA != uint64(size/ssz)-1 {
				t.warn("GPT:Alternate GPT header not at the end of the disk.")
			}
			return t.fromGPT(a), nil
		}
	}
	return nil, fmt.Errorf("partition: protective MBR, but no valid GPT header (%v): %w", firstErr, ErrCorrupt)
}

// compareGPTs warns where the two headers disagree, as the kernel's
// compare_gpts does.
func compareGPTs(t *Table, p, a *gptHeader) {
	if p.myLBA != a.altLBA {
		t.warn("GPT:Primary header LBA != Alt. header alternate_lba")
	}
	if p.altLBA != a.myLBA {
		t.warn("GPT:Primary header alternate_lba != Alt. header my_lba")
	}
	if p.firstUsable != a.firstUsable {
		t.warn("GPT:first_usable_lbas don't match.")
	}
	if p.lastUsable != a.lastUsable {
		t.warn("GPT:last_usable_lbas don't match.")
	}
	if p.diskGUID != a.diskGUID {
		t.warn("GPT:disk_guids don't match.")
	}
	if p.numEntries != a.numEntries {
		t.warn("GPT:num_partition_entries don't match: 0x%x != 0x%x", p.numEntries, a.numEntries)
	}
	if p.entriesCRC != a.entriesCRC {
		t.warn("GPT:partition_entry_array_crc32 values don't match: 0x%x != 0x%x", p.entriesCRC, a.entriesCRC)
	}
	if p.altLBA != p.lastLBA {
		t.warn("GPT:Primary header thinks Alt. header is not at the end of the disk.")
	}
	if a.myLBA != a.lastLBA {
		t.warn("GPT:Alternate GPT header not at the end of the disk.")
	}
}

// fromGPT makes the partitions of a valid header, as efi_partition.
func (t *Table) fromGPT(h *gptHeader) *Table {
	t.Scheme = "gpt"
	t.SectorSize = int(h.ssz)
	t.DiskID = formatGUID(h.diskGUID[:])
	le := binary.LittleEndian
	for i := 0; (i+1)*gptEntrySize <= len(h.entries); i++ {
		e := h.entries[i*gptEntrySize : (i+1)*gptEntrySize]
		if zero(e[:16]) {
			continue
		}
		num := i + 1
		first, last := le.Uint64(e[32:]), le.Uint64(e[40:])
		if first > h.lastLBA || last > h.lastLBA {
			t.warn("p%d: GPT entry (LBA %d-%d) runs past the last LBA %d, ignored", num, first, last, h.lastLBA)
			continue
		}
		if last < first {
			t.warn("p%d: GPT entry ends (LBA %d) before it starts (LBA %d), ignored", num, last, first)
			continue
		}
		if first < h.firstUsable || last > h.lastUsable {
			t.warn("p%d: LBA %d-%d lies outside the usable LBAs %d-%d", num, first, last, h.firstUsable, h.lastUsable)
		}
		typ := formatGUID(e[:16])
		attrs := le.Uint64(e[48:])
		t.Partitions = append(t.Partitions, Partition{
			Number:     num,
			Start:      int64(first) * h.ssz,
			Size:       int64(last-first+1) * h.ssz,
			Type:       typ,
			TypeName:   gptTypeNames[typ],
			Name:       decodeName(e[56:128]),
			UUID:       formatGUID(e[16:32]),
			Attributes: attrs,
			Bootable:   attrs&attrLegacyBoot != 0,
		})
	}
	if h.ignored > 0 {
		t.warn("%d GPT entries past entry %d ignored, as the kernel ignores them", h.ignored, maxGPTEntries)
	}
	return t
}

// decodeName decodes a GPT partition name: UTF-16LE up to the first NUL.
func decodeName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// formatGUID prints a GUID stored in the mixed-endian EFI layout in upper
// case, as sfdisk and sgdisk print them.
func formatGUID(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08X-%04X-%04X-%04X-%012X",
		le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]),
		binary.BigEndian.Uint16(b[8:]), b[10:16])
}
