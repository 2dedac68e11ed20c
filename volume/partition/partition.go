package partition

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

var (
	// ErrNoTable: sector 0 holds no partition table the kernel would
	// read (no 0x55AA signature, or boot indicators that make it a
	// filesystem's boot sector). The disk is unpartitioned.
	ErrNoTable = errors.New("partition: no partition table")
	// ErrCorrupt: a partition table is announced (a protective MBR) but
	// no valid copy of it can be read.
	ErrCorrupt = errors.New("partition: corrupt partition table")
)

// Table is a disk's partition table as Linux sees it.
type Table struct {
	Scheme     string // "mbr" or "gpt" (a GPT behind a protective or hybrid MBR is "gpt")
	SectorSize int    // 512, or 4096 when the GPT was found with 4096-byte sectors
	// DiskID is the GPT disk GUID in upper case, or the MBR disk
	// signature as "0x1234abcd": what sfdisk --json prints as "id".
	DiskID     string
	Partitions []Partition // in number order
	// Warnings says what was tolerated, each thing once, in the words of
	// the kernel, sfdisk or sgdisk where one of them says it.
	Warnings []string
}

// Partition is one entry of the table, with its place in bytes.
type Partition struct {
	// Number is the N of Linux's /dev/sdaN: the GPT entry index + 1; MBR
	// primary slots 1-4, logical partitions from 5 in chain order.
	Number      int
	Start, Size int64 // bytes from the start of the disk; Size is cut at the disk's end
	// Type is the GPT type GUID in upper case, or the MBR type in hex
	// without leading zeros ("83", "5"), as sfdisk --json prints them.
	Type     string
	TypeName string // sfdisk's name for Type, or "" when the type is not in our table
	Name     string // GPT partition name
	// UUID is the GPT unique partition GUID (upper case), or for MBR
	// "<disk signature>-NN" in lower-case hex, as blkid's PARTUUID.
	UUID string
	// Attributes are the GPT entry's attribute bits (0 for MBR).
	Attributes uint64
	// Bootable: the MBR active flag (0x80) or the GPT legacy BIOS
	// bootable attribute (bit 2).
	Bootable bool
	// Extended marks the MBR extended partition itself: a container of
	// logical partitions, listed with its full extent but not a volume.
	Extended bool
}

// Section returns a reader of the partition's bytes.
func (p Partition) Section(r io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(r, p.Start, p.Size)
}

// Read reads the partition table of a disk of size bytes.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	if size < 512 {
		return nil, fmt.Errorf("partition: disk of %d bytes has no sector 0: %w", size, ErrNoTable)
	}
	var mbr [512]byte
	if err := readFull(r, mbr[:], 0); err != nil {
		return nil, fmt.Errorf("partition: reading sector 0: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, fmt.Errorf("partition: sector 0 has no 0x55AA signature: %w", ErrNoTable)
	}
	var t *Table
	var err error
	// The kernel tries efi_partition before msdos_partition.
	switch kind := protectiveKind(&mbr); kind {
	case pmbrProtective, pmbrHybrid:
		t, err = readGPT(r, size)
		if err != nil {
			return nil, err
		}
		if kind == pmbrHybrid {
			t.warn("Found valid GPT with hybrid MBR; using GPT.")
		}
	default:
		t, err = readMBR(r, size, &mbr)
		if err != nil {
			return nil, err
		}
	}
	// The kernel counts the disk in whole 512-byte sectors.
	t.clip(size &^ 511)
	t.checkOverlaps()
	return t, nil
}

func (t *Table) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, w := range t.Warnings {
		if w == msg {
			return
		}
	}
	t.Warnings = append(t.Warnings, msg)
}

// clip applies the kernel's blk_add_partition: a partition that starts at
// or past the end of the disk is dropped, one that runs past it is cut at
// the end. Sizes in the warnings are 512-byte sectors, as the kernel's.
func (t *Table) clip(size int64) {
	kept := t.Partitions[:0]
	for _, p := range t.Partitions {
		if p.Start >= size {
			t.warn("p%d start %d is beyond EOD, dropped", p.Number, p.Start/512)
			continue
		}
		if p.Size > size-p.Start {
			t.warn("p%d size %d extends beyond EOD, truncated", p.Number, p.Size/512)
			p.Size = size - p.Start
		}
		kept = append(kept, p)
	}
	t.Partitions = kept
	sort.SliceStable(t.Partitions, func(i, j int) bool { return t.Partitions[i].Number < t.Partitions[j].Number })
}

// maxOverlapWarnings bounds the warnings a hostile table can make.
const maxOverlapWarnings = 16

// checkOverlaps warns about partitions that share sectors, which the
// kernel accepts silently when it scans a table. An extended partition
// contains its logical partitions and is left out.
func (t *Table) checkOverlaps() {
	var ps []Partition
	for _, p := range t.Partitions {
		if !p.Extended && p.Size > 0 {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Start != ps[j].Start {
			return ps[i].Start < ps[j].Start
		}
		return ps[i].Number < ps[j].Number
	})
	n := 0
	far := -1 // index of the partition reaching furthest so far
	for i, p := range ps {
		if far >= 0 && p.Start < ps[far].Start+ps[far].Size {
			n++
			if n <= maxOverlapWarnings {
				t.warn("p%d overlaps p%d", p.Number, ps[far].Number)
			}
		}
		if far < 0 || p.Start+p.Size > ps[far].Start+ps[far].Size {
			far = i
		}
	}
	if n > maxOverlapWarnings {
		t.warn("%d more overlapping partitions", n-maxOverlapWarnings)
	}
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
