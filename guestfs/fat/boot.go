package fat

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Limits of the format that keep a hostile boot sector from making the
// reader allocate or loop without end.
const (
	maxFAT12Clusters = 4084       // Linux's MAX_FAT12: more clusters make it FAT16
	maxFAT32Clusters = 0x0FFFFFF5 // the highest cluster number a FAT32 entry can name is this + 1
	bootSize         = 512
)

// bootSector is the BIOS parameter block, as Linux's fat_read_bpb reads it.
type bootSector struct {
	sectorSize      int64
	sectorsPerClust int64
	reserved        int64
	numFATs         int64
	rootEntries     int64
	totalSectors    int64
	fatSectors      int64
	media           byte
	fat32           bool
	extFlags        uint16
	rootCluster     uint32
	hasSerial       bool
	serial          [4]byte
	label           [11]byte
	hasLabel        bool
}

func isPow2(v int64) bool { return v > 0 && v&(v-1) == 0 }

// parseBoot checks the BPB's fields the way Linux and blkid do before they
// accept a FAT volume: a power-of-two sector size of 512-4096, a
// power-of-two cluster, at least one reserved sector and one FAT, and a
// valid media byte. Other boot sectors (NTFS, exFAT) fail here.
func parseBoot(b []byte) (*bootSector, error) {
	if len(b) < bootSize {
		return nil, fmt.Errorf("fat: boot sector: %w", guestfs.ErrNotFS)
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(b[o:])) }
	bs := &bootSector{
		sectorSize:      le16(11),
		sectorsPerClust: int64(b[13]),
		reserved:        le16(14),
		numFATs:         int64(b[16]),
		rootEntries:     le16(17),
		totalSectors:    le16(19),
		media:           b[21],
		fatSectors:      le16(22),
	}
	if string(b[3:11]) == "NTFS    " || string(b[3:11]) == "EXFAT   " {
		return nil, fmt.Errorf("fat: boot sector of %q: %w", b[3:11], guestfs.ErrNotFS)
	}
	if b[0] != 0xEB && b[0] != 0xE9 && b[0] != 0x00 {
		return nil, fmt.Errorf("fat: boot sector jump %#x: %w", b[0], guestfs.ErrNotFS)
	}
	if !isPow2(bs.sectorSize) || bs.sectorSize < 512 || bs.sectorSize > 4096 {
		return nil, fmt.Errorf("fat: sector size %d: %w", bs.sectorSize, guestfs.ErrNotFS)
	}
	if !isPow2(bs.sectorsPerClust) {
		return nil, fmt.Errorf("fat: %d sectors per cluster: %w", bs.sectorsPerClust, guestfs.ErrNotFS)
	}
	if bs.reserved == 0 || bs.numFATs == 0 {
		return nil, fmt.Errorf("fat: %d reserved sectors, %d FATs: %w", bs.reserved, bs.numFATs, guestfs.ErrNotFS)
	}
	if bs.media != 0xF0 && bs.media < 0xF8 {
		return nil, fmt.Errorf("fat: media byte %#x: %w", bs.media, guestfs.ErrNotFS)
	}
	if bs.totalSectors == 0 {
		bs.totalSectors = le32(32)
	}
	ext := 36 // the FAT12/16 extended BPB
	if bs.fatSectors == 0 {
		// FAT32: the 16-bit FAT size is zero and the 32-bit one follows.
		bs.fat32 = true
		bs.fatSectors = le32(36)
		bs.extFlags = uint16(le16(40))
		bs.rootCluster = uint32(le32(44))
		ext = 64
	}
	if bs.fatSectors == 0 || bs.totalSectors == 0 {
		return nil, fmt.Errorf("fat: %d sectors per FAT, %d sectors: %w", bs.fatSectors, bs.totalSectors, guestfs.ErrNotFS)
	}
	// The serial and label exist when the extended boot signature says so:
	// 0x29 has both, 0x28 only the serial (as blkid reads them).
	switch b[ext+2] {
	case 0x29:
		bs.hasLabel = true
		copy(bs.label[:], b[ext+7:ext+18])
		fallthrough
	case 0x28:
		bs.hasSerial = true
		copy(bs.serial[:], b[ext+3:ext+7])
	}
	return bs, nil
}

// Probe reports whether the volume starts with a FAT boot sector.
func Probe(r io.ReaderAt, size int64) bool {
	if size < bootSize {
		return false
	}
	b := make([]byte, bootSize)
	if n, err := r.ReadAt(b, 0); n < bootSize && err != nil {
		return false
	}
	_, err := parseBoot(b)
	return err == nil
}
