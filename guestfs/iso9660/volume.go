package iso9660

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/ovfmount/ovfmount/guestfs"
)

const (
	sectorSize = 2048 // the descriptors' and directory records' unit
	vdStart    = 16   // the first volume descriptor's sector
	maxVDs     = 64   // descriptors read before giving up on a terminator
)

// Volume descriptor types.
const (
	vdBoot          = 0 // El Torito boot record: ignored
	vdPrimary       = 1
	vdSupplementary = 2
	vdTerminator    = 255
)

// descriptor is what the reader keeps of a primary or Joliet volume
// descriptor.
type descriptor struct {
	blockSize int64
	blocks    int64
	root      []byte // the 34-byte root directory record
	volumeID  []byte // 32 bytes
	created   []byte // 17-byte dec-datetime
	modified  []byte
}

func parseDescriptor(b []byte) (*descriptor, error) {
	d := &descriptor{
		blockSize: int64(binary.LittleEndian.Uint16(b[128:])),
		blocks:    int64(binary.LittleEndian.Uint32(b[80:])),
		root:      b[156 : 156+34],
		volumeID:  b[40:72],
		created:   b[813:830],
		modified:  b[830:847],
	}
	if d.blockSize != 512 && d.blockSize != 1024 && d.blockSize != 2048 {
		return nil, fmt.Errorf("iso9660: logical block size %d: %w", d.blockSize, guestfs.ErrCorrupt)
	}
	if d.root[0] < 34 {
		return nil, fmt.Errorf("iso9660: root directory record of %d bytes: %w", d.root[0], guestfs.ErrCorrupt)
	}
	return d, nil
}

// Probe reports whether sector 16 holds an ISO 9660 volume descriptor.
func Probe(r io.ReaderAt, size int64) bool {
	if size < (vdStart+1)*sectorSize {
		return false
	}
	b := make([]byte, 8)
	if n, err := r.ReadAt(b, vdStart*sectorSize); n < len(b) && err != nil {
		return false
	}
	return string(b[1:6]) == "CD001" && b[6] == 1
}

// readVDs reads the volume descriptor set up to its terminator: the
// primary descriptor and a Joliet supplementary one, if any.
func (fs *FS) readVDs() (pvd, joliet *descriptor, err error) {
	for i := int64(0); i < maxVDs; i++ {
		off := (vdStart + i) * sectorSize
		if off+sectorSize > fs.size {
			break
		}
		b := make([]byte, sectorSize)
		if err := fs.readAt(b, off); err != nil {
			return nil, nil, err
		}
		if string(b[1:6]) != "CD001" {
			if i == 0 {
				return nil, nil, fmt.Errorf("iso9660: no CD001 at sector 16: %w", guestfs.ErrNotFS)
			}
			break
		}
		switch b[0] {
		case vdTerminator:
			i = maxVDs
		case vdPrimary:
			if pvd == nil {
				if pvd, err = parseDescriptor(b); err != nil {
					return nil, nil, err
				}
			}
		case vdSupplementary:
			// Joliet: escape sequences %/@, %/C or %/E (UCS-2 levels 1-3).
			esc := string(b[88:91])
			if joliet == nil && (esc == "%/@" || esc == "%/C" || esc == "%/E") {
				if joliet, err = parseDescriptor(b); err != nil {
					joliet = nil // a damaged Joliet tree: use the primary one
				}
			}
		}
	}
	if pvd == nil {
		return nil, nil, fmt.Errorf("iso9660: no primary volume descriptor: %w", guestfs.ErrNotFS)
	}
	return pvd, joliet, nil
}

// decDate parses a 17-byte dec-datetime ("YYYYMMDDHHMMSSCC" and a signed
// offset from GMT in 15-minute units); ok is false when it is unset (all
// zeros) or not digits.
func decDate(b []byte) (time.Time, bool) {
	var v [7]int
	widths := []int{4, 2, 2, 2, 2, 2, 2}
	o := 0
	for i, w := range widths {
		for _, c := range b[o : o+w] {
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			v[i] = v[i]*10 + int(c-'0')
		}
		o += w
	}
	if v[0] == 0 && v[1] == 0 && v[2] == 0 {
		return time.Time{}, false
	}
	zone := time.FixedZone("", int(int8(b[16]))*15*60)
	return time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], v[6]*10_000_000, zone), true
}

// uuidOf is the volume's UUID as blkid makes it: the modification date's
// digits, else the creation date's, as "YYYY-MM-DD-HH-MM-SS-CC".
func uuidOf(pvd *descriptor) string {
	for _, d := range [][]byte{pvd.modified, pvd.created} {
		digits := string(d[:16])
		if strings.Trim(digits, "0") == "" && d[16] == 0 {
			continue
		}
		return fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", digits[0:4], digits[4:6], digits[6:8], digits[8:10], digits[10:12], digits[12:14], digits[14:16])
	}
	return ""
}

// labelOf is the label as blkid shows it: the Joliet volume identifier
// when there is one that differs from the primary's (UCS-2 holds only 16
// characters, so an equal prefix means the primary's 32 are used), else
// the primary's; trailing spaces trimmed.
func labelOf(pvd, joliet *descriptor) string {
	if joliet != nil {
		same := true
		for i := 0; i < 16; i++ {
			if joliet.volumeID[2*i] != 0 || joliet.volumeID[2*i+1] != pvd.volumeID[i] {
				same = false
				break
			}
		}
		if !same {
			return strings.TrimRight(ucs2(joliet.volumeID), " \x00")
		}
	}
	return strings.TrimRight(string(pvd.volumeID), " \x00")
}

// ucs2 decodes big-endian UTF-16 (Joliet's UCS-2, surrogates allowed).
func ucs2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// readAt reads exactly len(p) bytes at off, inside the volume.
func (fs *FS) readAt(p []byte, off int64) error {
	if off < 0 || off > fs.size || int64(len(p)) > fs.size-off {
		return fmt.Errorf("iso9660: read of %d bytes at %d, past the volume's end at %d: %w", len(p), off, fs.size, guestfs.ErrCorrupt)
	}
	n, err := fs.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}
