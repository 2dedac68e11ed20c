package iso9660

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Bounds on Rock Ridge data, as Linux bounds them: continuation areas
// followed per record (RR_MAX_CE_ENTRIES), a symlink target's length
// (PATH_MAX) and an alternate name's (NAME_MAX).
const (
	maxCE     = 32
	maxTarget = 4095
	maxName   = 255
)

// rock is what a record's System Use Sharing Protocol entries say.
type rock struct {
	px                  bool
	mode, nlink         uint32
	uid, gid            uint32
	serial              uint64 // PX's file serial number (RRIP 1.12), 0: none
	pn                  bool
	rdev                uint64
	sl                  bool
	target              string
	nm                  bool
	name                string
	tf                  byte // which times TF gave
	btime, mtime, atime time.Time
	ctime               time.Time
	relocated           bool  // RE: the real place of a directory moved by CL
	cl                  bool  // CL: this record stands for a directory elsewhere
	clBlock             int64 // ... at this logical block
	unsupported         string
}

// TF flags.
const (
	tfCreate = 1 << iota
	tfModify
	tfAccess
	tfAttributes
	tfBackup
	tfExpiration
	tfEffective
	tfLongForm
)

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// suspEntries calls fn for each SUSP entry of a record's system use area
// and the continuation areas CE entries chain to (at most maxCE, each
// inside one logical block, as Linux requires).
func (fs *FS) suspEntries(su []byte, pos int64, fn func(sig string, data []byte) error) error {
	area := su
	for hops := 0; ; hops++ {
		var next []byte
		for len(area) >= 4 {
			n := int(area[2])
			if n < 4 || n > len(area) {
				break // padding or damage: the area ends here, as for Linux
			}
			e := area[:n]
			area = area[n:]
			sig := string(e[:2])
			switch sig {
			case "ST":
				area = nil
				continue
			case "CE":
				if n < 28 {
					continue
				}
				blk, off, ln := int64(le32(e[4:])), int64(le32(e[12:])), int64(le32(e[20:]))
				if off+ln > fs.blockSize || ln == 0 {
					return fmt.Errorf("iso9660: record at %d: continuation area of %d bytes at %d in a block of %d: %w", pos, ln, off, fs.blockSize, guestfs.ErrCorrupt)
				}
				next = make([]byte, ln)
				if err := fs.readAt(next, blk*fs.blockSize+off); err != nil {
					return fmt.Errorf("iso9660: record at %d: continuation area: %w", pos, err)
				}
				continue
			}
			if err := fn(sig, e[4:]); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		if hops >= maxCE {
			return fmt.Errorf("iso9660: record at %d: more than %d continuation areas: %w", pos, maxCE, guestfs.ErrCorrupt)
		}
		area = next
	}
}

// parseRock reads the Rock Ridge entries of a record.
func (fs *FS) parseRock(r *record) (*rock, error) {
	su := r.su
	if len(su) <= fs.suSkip {
		return nil, nil
	}
	su = su[fs.suSkip:]
	rr := &rock{}
	var target strings.Builder
	var comp strings.Builder // a symlink component being continued
	var comps []string
	var name strings.Builder
	err := fs.suspEntries(su, r.pos, func(sig string, d []byte) error {
		switch sig {
		case "PX":
			if len(d) < 32 {
				return nil
			}
			rr.px = true
			rr.mode, rr.nlink, rr.uid, rr.gid = le32(d[0:]), le32(d[8:]), le32(d[16:]), le32(d[24:])
			if len(d) >= 40 {
				rr.serial = uint64(le32(d[32:]))
			}
		case "PN":
			if len(d) < 16 {
				return nil
			}
			rr.pn = true
			high, low := le32(d[0:]), le32(d[8:])
			// A zero high word: the low one is the whole dev_t in Linux's
			// encoding (xorriso's), which for numbers below 0x10000 is
			// also the old 16-bit one Linux's kernel reads there.
			// Otherwise the words are the major and the minor, as the
			// kernel reads them.
			if high == 0 {
				rr.rdev = uint64(low)
			} else {
				rr.rdev = unix.Mkdev(high, low)
			}
		case "SL":
			if len(d) < 1 {
				return nil
			}
			rr.sl = true
			c := d[1:]
			for len(c) >= 2 {
				f, n := c[0], int(c[1])
				if 2+n > len(c) {
					return fmt.Errorf("iso9660: record at %d: symlink component of %d bytes overflows its SL entry: %w", r.pos, n, guestfs.ErrCorrupt)
				}
				switch {
				case f&0x08 != 0:
					comp.Reset()
					comps = append(comps[:0], "") // absolute: a leading "/"
				case f&0x02 != 0:
					comp.WriteString(".")
				case f&0x04 != 0:
					comp.WriteString("..")
				default:
					comp.Write(c[2 : 2+n])
				}
				if f&0x08 == 0 && f&0x01 == 0 {
					comps = append(comps, comp.String())
					comp.Reset()
				}
				c = c[2+n:]
				if comp.Len() > maxTarget || len(comps) > maxTarget {
					return fmt.Errorf("iso9660: record at %d: symlink target longer than %d: %w", r.pos, maxTarget, guestfs.ErrCorrupt)
				}
			}
		case "NM":
			if len(d) < 1 || d[0]&0x06 != 0 {
				return nil // "." and ".." names carry no text
			}
			rr.nm = true
			name.Write(d[1:])
			if name.Len() > 4*maxName {
				return fmt.Errorf("iso9660: record at %d: alternate name longer than %d: %w", r.pos, maxName, guestfs.ErrCorrupt)
			}
		case "TF":
			if len(d) < 1 {
				return nil
			}
			rr.tf = d[0]
			w := 7
			if d[0]&tfLongForm != 0 {
				w = 17
			}
			t := d[1:]
			for bit := byte(1); bit < tfLongForm; bit <<= 1 {
				if d[0]&bit == 0 {
					continue
				}
				if len(t) < w {
					break
				}
				var tm time.Time
				if w == 7 {
					tm = recordDate(t)
				} else {
					tm, _ = decDate(t)
				}
				t = t[w:]
				switch bit {
				case tfCreate:
					rr.btime = tm
				case tfModify:
					rr.mtime = tm
				case tfAccess:
					rr.atime = tm
				case tfAttributes:
					rr.ctime = tm
				}
			}
		case "RE":
			rr.relocated = true
		case "CL":
			if len(d) >= 8 {
				rr.cl, rr.clBlock = true, int64(le32(d))
			}
		case "SF":
			rr.unsupported = "a sparse file (Rock Ridge SF)"
		case "ZF":
			rr.unsupported = "a zisofs-compressed file (ZF)"
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if comp.Len() > 0 {
		comps = append(comps, comp.String())
	}
	if rr.sl {
		if len(comps) == 1 && comps[0] == "" {
			target.WriteString("/")
		} else {
			target.WriteString(strings.Join(comps, "/"))
		}
		if target.Len() > maxTarget {
			return nil, fmt.Errorf("iso9660: record at %d: symlink target longer than %d: %w", r.pos, maxTarget, guestfs.ErrCorrupt)
		}
		rr.target = target.String()
	}
	if rr.nm {
		rr.name = name.String()
		if len(rr.name) > maxName {
			return nil, fmt.Errorf("iso9660: record at %d: alternate name of %d bytes: %w", r.pos, len(rr.name), guestfs.ErrCorrupt)
		}
	}
	return rr, nil
}
