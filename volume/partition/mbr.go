package partition

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
)

// The kernel's limits for logical partitions (msdos.c parse_extended and
// DISK_MAX_PARTS): partition numbers stop at 255, and at most 100 EBRs in
// a row may hold no data partition.
const (
	maxPartNumber  = 255
	maxEmptyLinks  = 100
	typeEFIGPT     = 0xEE
	mbrEntryOffset = 0x1BE
)

type mbrEntry struct {
	boot  byte
	typ   byte
	start uint32 // sectors
	count uint32 // sectors
}

func mbrEntries(sector *[512]byte) [4]mbrEntry {
	var es [4]mbrEntry
	for i := range es {
		b := sector[mbrEntryOffset+16*i:]
		es[i] = mbrEntry{
			boot:  b[0],
			typ:   b[4],
			start: binary.LittleEndian.Uint32(b[8:]),
			count: binary.LittleEndian.Uint32(b[12:]),
		}
	}
	return es
}

func isExtended(typ byte) bool { return typ == 0x05 || typ == 0x0F || typ == 0x85 }

const (
	pmbrNone = iota
	pmbrProtective
	pmbrHybrid
)

// protectiveKind is the kernel's is_pmbr_valid: a 0xEE entry starting at
// LBA 1 makes a protective MBR, whatever its size (a disk image copied to
// a larger disk keeps its old size there); any other non-empty entry
// beside it makes it hybrid.
func protectiveKind(sector *[512]byte) int {
	es := mbrEntries(sector)
	found := false
	for _, e := range es {
		if e.typ == typeEFIGPT && e.start == 1 {
			found = true
			break
		}
	}
	if !found {
		return pmbrNone
	}
	for _, e := range es {
		if e.typ != typeEFIGPT && e.typ != 0 {
			return pmbrHybrid
		}
	}
	return pmbrProtective
}

// readMBR is the kernel's msdos_partition for 512-byte sectors.
func readMBR(r io.ReaderAt, size int64, sector *[512]byte) (*Table, error) {
	if fs := bootSector(sector); fs != "" {
		return nil, fmt.Errorf("partition: sector 0 is a %s boot sector: %w", fs, ErrNoTable)
	}
	es := mbrEntries(sector)
	for i, e := range es {
		if e.boot != 0 && e.boot != 0x80 {
			return nil, fmt.Errorf("partition: MBR entry %d has boot indicator %#02x (a boot sector, not a partition table): %w",
				i+1, e.boot, ErrNoTable)
		}
	}
	for _, e := range es {
		if e.typ == typeEFIGPT {
			// An 0xEE entry that does not start at LBA 1: neither
			// efi.c nor msdos.c reads this disk.
			return nil, fmt.Errorf("partition: MBR has a GPT entry that does not start at LBA 1: %w", ErrNoTable)
		}
	}
	sig := binary.LittleEndian.Uint32(sector[0x1B8:])
	t := &Table{Scheme: "mbr", SectorSize: 512, DiskID: fmt.Sprintf("0x%08x", sig)}
	next := 5
	for i, e := range es {
		if e.count == 0 {
			continue
		}
		p := t.mbrPartition(sig, i+1, e, int64(e.start))
		if isExtended(e.typ) {
			p.Extended = true
			t.Partitions = append(t.Partitions, p)
			next = t.readExtended(r, size, sig, int64(e.start), int64(e.count), next)
			continue
		}
		t.Partitions = append(t.Partitions, p)
	}
	return t, nil
}

func (t *Table) mbrPartition(sig uint32, num int, e mbrEntry, start int64) Partition {
	typ := strconv.FormatUint(uint64(e.typ), 16)
	return Partition{
		Number:   num,
		Start:    start * 512,
		Size:     int64(e.count) * 512,
		Type:     typ,
		TypeName: mbrTypeNames[e.typ],
		UUID:     fmt.Sprintf("%08x-%02x", sig, num),
		Bootable: e.boot == 0x80,
	}
}

// readExtended follows the chain of EBRs of an extended partition at
// first (sectors) of firstSize sectors, as msdos.c parse_extended: each
// EBR's data entries are relative to the EBR, its link to the next EBR is
// relative to the extended partition. It returns the next free number.
func (t *Table) readExtended(r io.ReaderAt, size int64, sig uint32, first, firstSize int64, next int) int {
	this, thisSize := first, firstSize
	seen := map[int64]bool{}
	empty := 0
	var sector [512]byte
	for {
		if empty++; empty > maxEmptyLinks {
			t.warn("extended partition at sector %d: %d links without a logical partition, chain not followed further", first, maxEmptyLinks)
			return next
		}
		if next > maxPartNumber {
			t.warn("logical partitions past p%d ignored, as the kernel ignores them", maxPartNumber)
			return next
		}
		if seen[this] {
			t.warn("extended partition chain loops back to sector %d, not followed further", this)
			return next
		}
		seen[this] = true
		if this*512+512 > size {
			t.warn("partition table partially beyond EOD (EBR at sector %d)", this)
			return next
		}
		if err := readFull(r, sector[:], this*512); err != nil {
			t.warn("reading EBR at sector %d: %v", this, err)
			return next
		}
		if sector[510] != 0x55 || sector[511] != 0xAA {
			if this != first {
				t.warn("EBR at sector %d has no 0x55AA signature, chain ends there", this)
			}
			return next
		}
		es := mbrEntries(&sector)
		for i, e := range es {
			if e.count == 0 || isExtended(e.typ) {
				continue
			}
			offs, cnt := int64(e.start), int64(e.count)
			start := this + offs
			// The 3rd and 4th entries sometimes hold garbage: the
			// kernel takes them only when they lie inside the
			// extended partition.
			if i >= 2 && (offs+cnt > thisSize || start < first || start+cnt > first+firstSize) {
				continue
			}
			t.Partitions = append(t.Partitions, t.mbrPartition(sig, next, e, start))
			empty = 0
			if next++; next > maxPartNumber {
				t.warn("logical partitions past p%d ignored, as the kernel ignores them", maxPartNumber)
				return next
			}
		}
		link := -1
		for i, e := range es {
			if e.count != 0 && isExtended(e.typ) {
				link = i
				break
			}
		}
		if link < 0 {
			return next
		}
		this = first + int64(es[link].start)
		thisSize = int64(es[link].count)
	}
}

// bootSector names the filesystem whose boot sector sector 0 is, or "".
// mkfs.vfat and mkntfs write 0x55AA and zero partition entries, which
// msdos.c would take for an empty table; libblkid, like us, takes them
// for the filesystems they are, so that the whole disk is the volume.
// The FAT test is the kernel's (reserved sectors, FAT count, media
// byte) plus a power-of-two sector size, which MBR boot code does not
// happen to hold at those offsets.
func bootSector(sector *[512]byte) string {
	switch string(sector[3:11]) {
	case "NTFS    ":
		return "NTFS"
	case "EXFAT   ":
		return "exFAT"
	}
	bps := binary.LittleEndian.Uint16(sector[11:])
	reserved := binary.LittleEndian.Uint16(sector[14:])
	fats, media := sector[16], sector[21]
	if (bps == 512 || bps == 1024 || bps == 2048 || bps == 4096) && reserved != 0 && fats != 0 &&
		(media == 0xF0 || media >= 0xF8) {
		return "FAT"
	}
	return ""
}
