package ntfs

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// fixupStride is the span each update sequence number protects: NTFS
// writes its multi-sector records (MFT records, index blocks) with the
// last two bytes of every 512 replaced by a sequence number, so a torn
// write shows as a mismatch.
const fixupStride = 512

// applyFixup checks a multi-sector record's magic and update sequence
// array and puts the saved bytes back, in place. A mismatch means the
// record was torn or damaged: ErrCorrupt.
func applyFixup(b []byte, magic string) error {
	if len(b) < 48 || len(b)%fixupStride != 0 {
		return fmt.Errorf("record of %d bytes: %w", len(b), guestfs.ErrCorrupt)
	}
	if string(b[:4]) != magic {
		return fmt.Errorf("magic %q, want %q: %w", b[:4], magic, guestfs.ErrCorrupt)
	}
	off := int(binary.LittleEndian.Uint16(b[4:]))
	count := int(binary.LittleEndian.Uint16(b[6:]))
	if count != len(b)/fixupStride+1 || off < 8 || off%2 != 0 || off+2*count > len(b) {
		return fmt.Errorf("update sequence array at %d of %d entries in %d bytes: %w", off, count, len(b), guestfs.ErrCorrupt)
	}
	usn0, usn1 := b[off], b[off+1]
	for i := 1; i < count; i++ {
		end := i * fixupStride
		if b[end-2] != usn0 || b[end-1] != usn1 {
			return fmt.Errorf("update sequence mismatch in sector %d: %w", i-1, guestfs.ErrCorrupt)
		}
		b[end-2], b[end-1] = b[off+2*i], b[off+2*i+1]
	}
	return nil
}
