package vhdx

import (
	"encoding/binary"
	"hash/crc32"
	"os/exec"
	"testing"
)

func execOut(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// setCRC stores the CRC-32C of b (with the field zeroed) at b[4:8].
func setCRC(b []byte) {
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b, castagnoli))
}

func fixHeader(b []byte, off int64)      { setCRC(b[off : off+headerSize]) }
func fixRegionTable(b []byte, off int64) { setCRC(b[off : off+regionTableSize]) }

// fixAll recomputes the CRCs of both headers and both region tables after
// a test edited them.
func fixAll(b []byte) {
	fixHeader(b, header1Offset)
	fixHeader(b, header2Offset)
	fixRegionTable(b, regionTable1)
	fixRegionTable(b, regionTable2)
}

// activeHeaderOffset is the offset of the header with the higher sequence
// number.
func activeHeaderOffset(b []byte) int64 {
	if binary.LittleEndian.Uint64(b[header1Offset+8:]) > binary.LittleEndian.Uint64(b[header2Offset+8:]) {
		return header1Offset
	}
	return header2Offset
}

// regionOf returns the offset and length of a region from region table 1
// and the offset of its entry.
func regionOf(t testing.TB, b []byte, id guid) (off, length, entry int64) {
	t.Helper()
	count := int64(binary.LittleEndian.Uint32(b[regionTable1+8:]))
	for i := range count {
		e := regionTable1 + 16 + 32*i
		if guid(b[e:e+16]) == id {
			return int64(binary.LittleEndian.Uint64(b[e+16:])), int64(binary.LittleEndian.Uint32(b[e+24:])), e
		}
	}
	t.Fatalf("region %v not found", id)
	return 0, 0, 0
}

// itemEntry returns the file offset of a metadata item's table entry.
func itemEntry(t testing.TB, b []byte, id guid) int64 {
	t.Helper()
	md, _, _ := regionOf(t, b, regionMetadata)
	count := int64(binary.LittleEndian.Uint16(b[md+10:]))
	for i := range count {
		e := md + 32 + 32*i
		if guid(b[e:e+16]) == id {
			return e
		}
	}
	t.Fatalf("metadata item %v not found", id)
	return 0
}

// itemFileOffset returns the file offset of a metadata item's data.
func itemFileOffset(t testing.TB, b []byte, id guid) int64 {
	t.Helper()
	md, _, _ := regionOf(t, b, regionMetadata)
	e := itemEntry(t, b, id)
	return md + int64(binary.LittleEndian.Uint32(b[e+16:]))
}

func TestGUIDText(t *testing.T) {
	g := mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	want := []byte{0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08}
	if [16]byte(g) != [16]byte(want) {
		t.Fatalf("on-disk bytes %x, want %x", g[:], want)
	}
	if s := g.String(); s != "2DC27766-F623-4200-9D64-115E9BFD4A08" {
		t.Fatalf("String() = %s", s)
	}
	for _, bad := range []string{"", "2DC27766-F623-4200-9D64-115E9BFD4A0", "2DC27766xF623-4200-9D64-115E9BFD4A08", "ZZC27766-F623-4200-9D64-115E9BFD4A08"} {
		if _, err := parseGUID(bad); err == nil {
			t.Errorf("parseGUID(%q) accepted", bad)
		}
	}
}
