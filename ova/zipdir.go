package ova

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Record signatures and fixed lengths of the zip format (PKWARE APPNOTE
// 6.3, sections 4.3.7 to 4.3.16).
const (
	sigLocal     = 0x04034b50
	sigCentral   = 0x02014b50
	sigEnd       = 0x06054b50
	sigEnd64     = 0x06064b50
	sigLocator64 = 0x07064b50

	localLen     = 30
	centralLen   = 46
	endLen       = 22
	end64Len     = 56
	locator64Len = 20
	maxComment   = 1<<16 - 1

	// maxZipEntries bounds the entries indexed, whatever the directory
	// says: each costs a few hundred bytes of memory and a read of its
	// local header. An appliance has a handful.
	maxZipEntries = 1 << 22
)

// Bits of the general purpose flag.
const (
	zipFlagEncrypted  = 1 << 0
	zipFlagDescriptor = 1 << 3
	zipFlagUTF8       = 1 << 11
)

// Hosts of "version made by" whose external attributes hold a Unix mode
// (the high 16 bits), and those whose names are MS-DOS style (CP437,
// backslashes).
const (
	hostDOS  = 0
	hostUnix = 3
	hostHPFS = 6
	hostNTFS = 10 // Windows NTFS per APPNOTE; 11 is MVS, but is also seen
	hostVFAT = 14
	hostOSX  = 19
)

var le = binary.LittleEndian

// zipEnd is what the end of central directory records (and, for zip64,
// the zip64 end record) say about the directory.
type zipEnd struct {
	at      int64  // offset of the end of central directory record
	dirEnd  int64  // where the directory must end: the zip64 end record, or at
	entries uint64 // total entries, as recorded
	cdSize  int64
	cdOff   int64 // as recorded, before any prefix is added
	zip64   bool
}

// findEnd locates the end of central directory record in the last 64 KiB
// (plus the record's length) of the file, where a trailing comment may
// push it. Of several candidates, the one whose comment ends exactly at
// the end of the file wins; failing that (bytes were appended), the last
// one that fits, with a warning.
func findEnd(r io.ReaderAt, size int64, warn func(off int64, format string, args ...any)) (zipEnd, error) {
	var z zipEnd
	tailLen := min(size, endLen+maxComment)
	tail := make([]byte, tailLen)
	if err := readFull(r, tail, size-tailLen); err != nil {
		return z, fmt.Errorf("ova: zip: reading the end of the file: %w", err)
	}
	exact, fits := -1, -1
	for i := len(tail) - endLen; i >= 0; i-- {
		if le.Uint32(tail[i:]) != sigEnd {
			continue
		}
		clen := int(le.Uint16(tail[i+20:]))
		switch {
		case i+endLen+clen == len(tail):
			exact = i
		case i+endLen+clen < len(tail) && fits < 0:
			fits = i
		}
		if exact >= 0 {
			break
		}
	}
	i := exact
	if i < 0 {
		i = fits
	}
	if i < 0 {
		return z, fmt.Errorf("ova: zip: no end of central directory record in the last %d bytes: %w", tailLen, ErrNotZip)
	}
	rec := tail[i:]
	z.at = size - tailLen + int64(i)
	z.dirEnd = z.at
	if exact < 0 {
		trail := len(tail) - i - endLen - int(le.Uint16(rec[20:]))
		warn(z.at, "%d bytes after the end of central directory record and its comment are ignored", trail)
	}
	disk, cdDisk := le.Uint16(rec[4:]), le.Uint16(rec[6:])
	onDisk, total := le.Uint16(rec[8:]), le.Uint16(rec[10:])
	z.entries = uint64(total)
	z.cdSize = int64(le.Uint32(rec[12:]))
	z.cdOff = int64(le.Uint32(rec[16:]))

	if z.at >= locator64Len {
		if err := z.readZip64(r, warn); err != nil {
			return z, err
		}
	}
	if !z.zip64 {
		if disk != 0 || cdDisk != 0 || onDisk != total {
			return z, fmt.Errorf("ova: zip: the archive spans several disks (disk %d, directory on disk %d), which is not supported: %w", disk, cdDisk, ErrZipCorrupt)
		}
	}
	return z, nil
}

// readZip64 reads the zip64 end of central directory locator just before
// the end record and, when there is one, the zip64 end record it points
// at, whose 64-bit counts replace the saturated 16- and 32-bit ones.
func (z *zipEnd) readZip64(r io.ReaderAt, warn func(off int64, format string, args ...any)) error {
	loc := make([]byte, locator64Len)
	locAt := z.at - locator64Len
	if err := readFull(r, loc, locAt); err != nil {
		return fmt.Errorf("ova: zip: reading the zip64 locator: %w", err)
	}
	if le.Uint32(loc) != sigLocator64 {
		return nil
	}
	if le.Uint32(loc[4:]) != 0 || le.Uint32(loc[16:]) > 1 {
		return fmt.Errorf("ova: zip: the zip64 locator says the archive spans %d disks, which is not supported: %w", le.Uint32(loc[16:]), ErrZipCorrupt)
	}
	at := int64(le.Uint64(loc[8:]))
	rec := make([]byte, end64Len)
	if at < 0 || at > locAt-end64Len || readFull(r, rec, at) != nil || le.Uint32(rec) != sigEnd64 {
		// A prefix (a self-extractor stub) moves the record without
		// updating the locator; it then sits right before the locator,
		// unless the record carries extensible data, which nobody writes.
		alt := locAt - end64Len
		if alt < 0 || readFull(r, rec, alt) != nil || le.Uint32(rec) != sigEnd64 {
			return fmt.Errorf("ova: zip: the zip64 locator points at offset %d, where there is no zip64 end record: %w", at, ErrZipCorrupt)
		}
		warn(alt, "the zip64 end record is at offset %d, not at %d where its locator says", alt, at)
		at = alt
	}
	if le.Uint32(rec[16:]) != 0 || le.Uint32(rec[20:]) != 0 {
		return fmt.Errorf("ova: zip: the zip64 end record says the archive spans several disks, which is not supported: %w", ErrZipCorrupt)
	}
	onDisk, total := le.Uint64(rec[24:]), le.Uint64(rec[32:])
	cdSize, cdOff := le.Uint64(rec[40:]), le.Uint64(rec[48:])
	if onDisk != total || cdSize > 1<<62 || cdOff > 1<<62 {
		return fmt.Errorf("ova: zip: the zip64 end record is inconsistent (%d entries on this disk of %d, directory of %d bytes at %d): %w",
			onDisk, total, cdSize, cdOff, ErrZipCorrupt)
	}
	z.zip64 = true
	z.dirEnd = at
	z.entries, z.cdSize, z.cdOff = total, int64(cdSize), int64(cdOff)
	return nil
}

// centralEntry is one central directory record, with what its extra
// fields add, before its local header is read.
type centralEntry struct {
	index      int    // position in the directory
	at         int64  // file offset of the record
	rawName    []byte //
	creator    uint8  // host of "version made by"
	flags      uint16
	method     uint16
	dosTime    uint16
	dosDate    uint16
	crc        uint32
	csize      int64
	usize      int64
	extAttr    uint32
	localOff   int64     // file offset of the local header, prefix included
	mtime      time.Time // from an extended timestamp or NTFS field, else zero
	uid, gid   int
	unicode    string // Info-ZIP Unicode Path field, when it matches rawName
	hasUnicode bool
	aesMethod  uint16 // the real method of a WinZip AES entry (method 99)
	bad        string // why the entry cannot be used, if it cannot
}

// readDirectory reads the central directory at [start, start+size),
// record by record through a small buffer, so that memory follows the
// records actually present, never the count the end record claims.
func readDirectory(r io.ReaderAt, start, size, prefix int64) ([]*centralEntry, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, start, size), 64<<10)
	var out []*centralEntry
	var hdr [centralLen]byte
	pos := start
	for i := 0; pos < start+size; i++ {
		if i >= maxZipEntries {
			return nil, fmt.Errorf("ova: zip: more than %d entries: %w", maxZipEntries, ErrZipCorrupt)
		}
		if start+size-pos < centralLen {
			return nil, fmt.Errorf("ova: zip: entry %d: %d bytes left in the central directory at offset %d, too few for a record: %w", i, start+size-pos, pos, ErrZipCorrupt)
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, fmt.Errorf("ova: zip: entry %d: reading the central directory at offset %d: %w", i, pos, err)
		}
		if le.Uint32(hdr[:]) != sigCentral {
			return nil, fmt.Errorf("ova: zip: entry %d: no central directory signature at offset %d: %w", i, pos, ErrZipCorrupt)
		}
		nl, xl, cl := int64(le.Uint16(hdr[28:])), int64(le.Uint16(hdr[30:])), int64(le.Uint16(hdr[32:]))
		if centralLen+nl+xl+cl > start+size-pos {
			return nil, fmt.Errorf("ova: zip: entry %d: its record at offset %d runs past the end of the central directory: %w", i, pos, ErrZipCorrupt)
		}
		vb := make([]byte, nl+xl)
		if _, err := io.ReadFull(br, vb); err != nil {
			return nil, fmt.Errorf("ova: zip: entry %d: reading the central directory at offset %d: %w", i, pos, err)
		}
		if _, err := br.Discard(int(cl)); err != nil {
			return nil, fmt.Errorf("ova: zip: entry %d: reading the central directory at offset %d: %w", i, pos, err)
		}
		e := &centralEntry{
			index:    i,
			at:       pos,
			rawName:  vb[:nl:nl],
			creator:  hdr[5],
			flags:    le.Uint16(hdr[8:]),
			method:   le.Uint16(hdr[10:]),
			dosTime:  le.Uint16(hdr[12:]),
			dosDate:  le.Uint16(hdr[14:]),
			crc:      le.Uint32(hdr[16:]),
			csize:    int64(le.Uint32(hdr[20:])),
			usize:    int64(le.Uint32(hdr[24:])),
			extAttr:  le.Uint32(hdr[38:]),
			localOff: int64(le.Uint32(hdr[42:])),
		}
		disk := le.Uint16(hdr[34:])
		e.extras(vb[nl:], disk)
		if e.bad == "" && (e.csize > 1<<62 || e.usize > 1<<62 || e.localOff > 1<<62) {
			e.bad = "its sizes or offset are out of range"
		}
		e.localOff += prefix
		out = append(out, e)
		pos += centralLen + nl + xl + cl
	}
	return out, nil
}

// extras applies the extra fields of a central record: zip64 sizes and
// offset, timestamps, owner, the Unicode name, and the AES method.
func (e *centralEntry) extras(x []byte, disk uint16) {
	const sat32 = 0xffffffff
	needU, needC, needO := e.usize == sat32, e.csize == sat32, e.localOff == sat32
	needD := disk == 0xffff
	var ntfsTime time.Time
	for len(x) >= 4 {
		id, n := le.Uint16(x), int(le.Uint16(x[2:]))
		if 4+n > len(x) {
			break // a damaged extra field; what was read stands
		}
		f := x[4 : 4+n]
		x = x[4+n:]
		switch id {
		case 0x0001: // zip64: only the saturated fields, in this order
			next := func(need bool) (uint64, bool) {
				if !need {
					return 0, true
				}
				if len(f) < 8 {
					return 0, false
				}
				v := le.Uint64(f)
				f = f[8:]
				return v, true
			}
			u, ok1 := next(needU)
			c, ok2 := next(needC)
			o, ok3 := next(needO)
			if !ok1 || !ok2 || !ok3 {
				e.bad = "its zip64 extra field lacks the sizes or offset it must hold"
				return
			}
			if needU {
				e.usize, needU = int64(u), false
			}
			if needC {
				e.csize, needC = int64(c), false
			}
			if needO {
				e.localOff, needO = int64(o), false
			}
			if needD && len(f) >= 4 {
				disk, needD = uint16(min(le.Uint32(f), 0xffff)), false
			}
		case 0x5455: // extended timestamp: flags, then mtime if bit 0
			if len(f) >= 5 && f[0]&1 != 0 {
				e.mtime = time.Unix(int64(le.Uint32(f[1:])), 0)
			}
		case 0x000a: // NTFS: reserved, then tag 1 with mtime, atime, ctime
			if len(f) >= 4+4+24 && le.Uint16(f[4:]) == 1 && le.Uint16(f[6:]) >= 24 {
				ticks := le.Uint64(f[8:]) // 100 ns since 1601
				const epochDiff = 116444736000000000
				if ticks >= epochDiff {
					d := ticks - epochDiff
					ntfsTime = time.Unix(int64(d/1e7), int64(d%1e7)*100)
				}
			}
		case 0x7875: // Info-ZIP Unix owner: version 1, uid, gid of given sizes
			if len(f) >= 3 && f[0] == 1 {
				us := int(f[1])
				if us <= 4 && len(f) >= 2+us+1 {
					gs := int(f[2+us])
					if gs <= 4 && len(f) >= 3+us+gs {
						e.uid = int(leUint(f[2 : 2+us]))
						e.gid = int(leUint(f[3+us : 3+us+gs]))
					}
				}
			}
		case 0x7075: // Info-ZIP Unicode Path: version 1, CRC-32 of the raw name, UTF-8 name
			if len(f) >= 5 && f[0] == 1 && le.Uint32(f[1:]) == crc32IEEE(e.rawName) {
				e.unicode, e.hasUnicode = string(f[5:]), true
			}
		case 0x9901: // WinZip AES: version, vendor, strength, real method
			if len(f) >= 7 {
				e.aesMethod = le.Uint16(f[5:])
			}
		}
	}
	if e.mtime.IsZero() && !ntfsTime.IsZero() {
		e.mtime = ntfsTime
	}
	switch {
	case needU || needC || needO:
		e.bad = "it has saturated sizes or offset but no zip64 extra field"
	case disk != 0 && !needD:
		e.bad = fmt.Sprintf("its data is on disk %d of a multi-disk archive", disk)
	}
}

func leUint(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// dosTime converts an MS-DOS date and time, which record the creator's
// local time with no zone, to a time in the local zone, as unzip does.
func dosTime(d, t uint16) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Date(int(d>>9)+1980, time.Month(d>>5&15), int(d&31),
		int(t>>11), int(t>>5&63), int(t&31)*2, 0, time.Local)
}

// msdosHost reports whether names made by this host follow MS-DOS rules:
// CP437 without the UTF-8 flag, and perhaps backslashes as separators.
func msdosHost(h uint8) bool {
	return h == hostDOS || h == hostHPFS || h == hostNTFS || h == 11 || h == hostVFAT
}

// displayName is the name as stored, for warnings.
func (e *centralEntry) displayName() string {
	if e.hasUnicode {
		return e.unicode
	}
	if e.flags&zipFlagUTF8 != 0 || !msdosHost(e.creator) || utf8.Valid(e.rawName) {
		return string(e.rawName)
	}
	return decodeCP437(e.rawName)
}

// zipName decides an entry's name, and notes what a careful user wants to
// know about it. The UTF-8 flag, or an Info-ZIP Unicode Path field whose
// checksum matches, gives UTF-8. Without them APPNOTE says CP437, but
// names from Unix and other hosts are really the bytes of the creator's
// locale, nowadays UTF-8, and are kept as they are, which is what unzip
// does on Linux. Names from MS-DOS and Windows hosts are decoded from
// CP437, unless they are valid UTF-8: several writers (archive/zip's
// CreateRaw among them) store UTF-8 without the flag, and CP437 text that
// happens to be valid UTF-8 would need a box-drawing character before
// each accented letter. MS-DOS names may also use backslashes as
// separators, which become slashes, with a note.
func zipName(e *centralEntry) (name, note string) {
	switch {
	case e.hasUnicode:
		return e.unicode, ""
	case e.flags&zipFlagUTF8 != 0, !msdosHost(e.creator):
		return string(e.rawName), ""
	}
	name = string(e.rawName)
	if !utf8.Valid(e.rawName) {
		name = decodeCP437(e.rawName)
		note = "name decoded from code page 437"
	}
	if bytes.IndexByte(e.rawName, '\\') >= 0 {
		name = strings.ReplaceAll(name, "\\", "/")
		if note != "" {
			note += "; "
		}
		note += "backslashes taken for directory separators, as unzip does for MS-DOS archives"
	}
	return name, note
}
