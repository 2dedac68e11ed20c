package ntfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"github.com/ovfmount/ovfmount/guestfs"
)

// bootSize is the part of the boot sector the geometry is read from.
const bootSize = 512

var oemID = []byte("NTFS    ")

// geometry is what the boot sector says about the volume's layout.
type geometry struct {
	sectorSize   int64
	clusterSize  int64
	clusterShift uint
	sectors      uint64 // the volume's sectors, without the backup boot sector after them
	clusters     int64
	mftLCN       int64
	recordSize   int64 // an MFT record's bytes
	indexSize    int64 // an index block's bytes, as the boot sector says
	serial       uint64
}

// sizeField decodes the signed byte the boot sector uses for the MFT record
// and index block sizes: a positive value counts clusters, a negative one
// -n means 2^n bytes.
func sizeField(v int8, clusterSize int64) (int64, bool) {
	if v > 0 {
		return int64(v) * clusterSize, true
	}
	if v < 0 && v >= -31 {
		return 1 << uint(-v), true
	}
	return 0, false
}

func isPow2(v int64) bool { return v > 0 && v&(v-1) == 0 }

// parseBoot checks the boot sector's NTFS signature and geometry.
func parseBoot(b []byte) (geometry, error) {
	var g geometry
	if len(b) < bootSize || !bytes.Equal(b[3:11], oemID) {
		return g, fmt.Errorf("ntfs: no NTFS signature in the boot sector: %w", guestfs.ErrNotFS)
	}
	g.sectorSize = int64(binary.LittleEndian.Uint16(b[0x0b:]))
	if g.sectorSize < 256 || g.sectorSize > 4096 || !isPow2(g.sectorSize) {
		return g, fmt.Errorf("ntfs: boot sector: %d bytes per sector: %w", g.sectorSize, guestfs.ErrNotFS)
	}
	spc := int64(b[0x0d])
	if spc > 0x80 {
		// Clusters of 128 KiB and more: the byte is a negative shift.
		shift := 256 - spc
		if shift > 12 {
			return g, fmt.Errorf("ntfs: boot sector: sectors per cluster %#x: %w", b[0x0d], guestfs.ErrNotFS)
		}
		spc = 1 << uint(shift)
	}
	if spc == 0 || !isPow2(spc) {
		return g, fmt.Errorf("ntfs: boot sector: %d sectors per cluster: %w", spc, guestfs.ErrNotFS)
	}
	g.clusterSize = spc * g.sectorSize
	if g.clusterSize > 2<<20 {
		return g, fmt.Errorf("ntfs: boot sector: clusters of %d bytes: %w", g.clusterSize, guestfs.ErrNotFS)
	}
	g.clusterShift = uint(bits.TrailingZeros64(uint64(g.clusterSize)))
	g.sectors = binary.LittleEndian.Uint64(b[0x28:])
	if g.sectors == 0 || g.sectors > 1<<52 {
		return g, fmt.Errorf("ntfs: boot sector: %d sectors: %w", g.sectors, guestfs.ErrNotFS)
	}
	g.clusters = int64(g.sectors / uint64(spc))
	g.mftLCN = int64(binary.LittleEndian.Uint64(b[0x30:]))
	if g.mftLCN <= 0 || g.mftLCN >= g.clusters {
		return g, fmt.Errorf("ntfs: boot sector: $MFT at cluster %d of %d: %w", g.mftLCN, g.clusters, guestfs.ErrNotFS)
	}
	var ok bool
	g.recordSize, ok = sizeField(int8(b[0x40]), g.clusterSize)
	// Fixups protect every 512 bytes, so a record is a whole number of them.
	if !ok || g.recordSize < 512 || g.recordSize > 64<<10 || !isPow2(g.recordSize) {
		return g, fmt.Errorf("ntfs: boot sector: MFT record size field %d: %w", int8(b[0x40]), guestfs.ErrNotFS)
	}
	g.indexSize, ok = sizeField(int8(b[0x44]), g.clusterSize)
	if !ok || g.indexSize < 512 || g.indexSize > 64<<10 || !isPow2(g.indexSize) {
		return g, fmt.Errorf("ntfs: boot sector: index block size field %d: %w", int8(b[0x44]), guestfs.ErrNotFS)
	}
	g.serial = binary.LittleEndian.Uint64(b[0x48:])
	return g, nil
}

// Probe reports whether the volume's boot sector carries the NTFS
// signature and a sane geometry.
func Probe(r io.ReaderAt, size int64) bool {
	if size < bootSize {
		return false
	}
	b := make([]byte, bootSize)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return false
	}
	_, err := parseBoot(b)
	return err == nil
}
