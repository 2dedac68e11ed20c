package ext4

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c_le: no inversion before or after, so that
// checksums chain (seed, then inode number, then the structure) exactly as
// ext4 computes them. Go's crc32.Update inverts on entry and exit, hence
// the double inversion.
func crc32c(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

func crc32cU32(crc, v uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return crc32c(crc, b[:])
}

func crc32cU64(crc uint32, v uint64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return crc32c(crc, b[:])
}

// crc32cSkip checksums p as if the n bytes at off were zero: the stored
// checksum field is left out of its own checksum, and p (a cached block
// shared by readers) must not be modified.
func crc32cSkip(crc uint32, p []byte, off, n int) uint32 {
	var zero [8]byte
	crc = crc32c(crc, p[:off])
	crc = crc32c(crc, zero[:n])
	return crc32c(crc, p[off+n:])
}
