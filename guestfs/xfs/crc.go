package xfs

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcOK checks a v5 metadata block's CRC32C: the checksum of the whole
// buffer with its own 4-byte field taken as zero, stored little-endian.
// The reader verifies every v5 metadata block it reads (superblock,
// inodes, btree, directory, attribute and symlink blocks), since a bad CRC
// is what makes the kernel refuse the block; file data has no CRC.
func crcOK(b []byte, off int) bool {
	if off < 0 || off+4 > len(b) {
		return false
	}
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, zero[:])
	c = crc32.Update(c, castagnoli, b[off+4:])
	return c == binary.LittleEndian.Uint32(b[off:])
}
