package iso9660

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Directory record flags.
const (
	flagHidden     = 0x01
	flagDir        = 0x02
	flagAssociated = 0x04
	flagMultiExt   = 0x80 // not the file's last extent
	minRecord      = 34   // 33 fixed bytes and a name of one
)

// record is one directory record as stored.
type record struct {
	pos    int64 // volume offset
	length int
	xar    int64 // extended attribute record blocks before the data
	extent int64 // first logical block
	size   int64 // data length
	date   []byte
	flags  byte
	unit   byte // interleaving: file unit size
	gap    byte // interleaving: gap size
	name   []byte
	su     []byte // the system use area
}

// parseRecord reads the record at the start of b (the rest of its
// sector), checking that it fits.
func parseRecord(b []byte, pos int64) (record, error) {
	n := int(b[0])
	if n < minRecord || n > len(b) {
		return record{}, fmt.Errorf("iso9660: directory record at %d: length %d with %d bytes left in its sector: %w", pos, n, len(b), guestfs.ErrCorrupt)
	}
	nameLen := int(b[32])
	if nameLen == 0 || 33+nameLen > n {
		return record{}, fmt.Errorf("iso9660: directory record at %d: name of %d bytes in a record of %d: %w", pos, nameLen, n, guestfs.ErrCorrupt)
	}
	r := record{
		pos:    pos,
		length: n,
		xar:    int64(b[1]),
		extent: int64(binary.LittleEndian.Uint32(b[2:])),
		size:   int64(binary.LittleEndian.Uint32(b[10:])),
		date:   b[18:25],
		flags:  b[25],
		unit:   b[26],
		gap:    b[27],
		name:   b[33 : 33+nameLen],
	}
	su := 33 + nameLen
	if nameLen%2 == 0 {
		su++ // the padding byte that keeps the system use area even
	}
	if su < n {
		r.su = b[su:n]
	}
	return r, nil
}

// isDot says whether the record is "." (0x00) or ".." (0x01).
func (r *record) isDot() bool { return len(r.name) == 1 && r.name[0] <= 1 }

// recordDate converts a 7-byte recording date (years since 1900, month,
// day, hour, minute, second, offset from GMT in 15-minute units); an
// offset outside ±13 hours is ignored, as Linux ignores it. A zero month
// or day means no date.
func recordDate(b []byte) time.Time {
	if b[1] == 0 || b[2] == 0 {
		return time.Time{}
	}
	off := int(int8(b[6]))
	if off < -52 || off > 52 {
		off = 0
	}
	t := time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, time.UTC)
	return t.Add(-time.Duration(off) * 15 * time.Minute)
}

// plainName is an ISO 9660 name as Linux shows it with its default
// map=normal: lowercased, a trailing ";1" (with a "." before it) dropped,
// other ";" and "/" turned into ".", stopping at a NUL.
func plainName(raw []byte) string {
	n := len(raw)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		c := raw[i]
		if c == 0 {
			break
		}
		if c >= 'A' && c <= 'Z' {
			c |= 0x20
		}
		if c == '.' && i == n-3 && raw[i+1] == ';' && raw[i+2] == '1' {
			break
		}
		if c == ';' && i == n-2 && raw[i+1] == '1' {
			break
		}
		if c == ';' || c == '/' {
			c = '.'
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// jolietName is a Joliet (UCS-2) name as Linux shows it: a trailing ";1"
// dropped, then trailing dots.
func jolietName(raw []byte) string {
	s := ucs2(raw[:len(raw)&^1])
	if len(s) > 2 && strings.HasSuffix(s, ";1") {
		s = s[:len(s)-2]
	}
	for len(s) >= 2 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// validName says whether a name can be listed: hostile volumes can store
// "/" or NUL in a Rock Ridge or Joliet name, or an empty one.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 1024 && !strings.ContainsAny(s, "/\x00")
}
