package ova

import (
	"bytes"
	"fmt"
	"io"
	"time"
)

// entry is one member header as the scan found it, before names are
// checked and links, duplicates and directories are resolved.
type entry struct {
	hdrOff   int64
	rawName  string
	typ      byte
	mode     int64
	uid, gid int
	mtime    time.Time
	size     int64 // logical size
	linkname string
	tar      *TarHeader // how the header was written (tarformat.go)
	frags    []fragment
	avail    int64
	one      [1]fragment // backing store for the common single fragment
}

// scanner walks the headers of a tar archive. It reads through a small
// window so that runs of tiny members cost one read per window, not one per
// header, and it seeks over member data without reading it.
type scanner struct {
	r    io.ReaderAt
	size int64

	win    []byte
	winOff int64
	winLen int

	emit    func(*entry) // receives each entry as soon as it is complete
	warn    []Warning
	globals []paxRecord
}

const scanWindow = 64 << 10

func (s *scanner) warnf(off int64, name, format string, args ...any) {
	s.warn = append(s.warn, Warning{Offset: off, Name: name, Msg: fmt.Sprintf(format, args...)})
}

// block returns the 512 bytes at off, which must end inside the archive.
func (s *scanner) block(off int64) ([]byte, error) {
	if off >= s.winOff && off+blockSize <= s.winOff+int64(s.winLen) {
		return s.win[off-s.winOff : off-s.winOff+blockSize], nil
	}
	if s.win == nil {
		s.win = make([]byte, scanWindow)
	}
	n := int(min(int64(len(s.win)), s.size-off))
	k, err := s.r.ReadAt(s.win[:n], off)
	if k < n {
		s.winLen = 0
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("ova: reading header at offset %d: %w", off, err)
	}
	s.winOff, s.winLen = off, n
	return s.win[:blockSize], nil
}

// readSpecial reads the data of a pax header, GNU long name or sparse map,
// bounded by maxSpecialSize.
func (s *scanner) readSpecial(off, n int64) ([]byte, error) {
	if n > maxSpecialSize {
		return nil, fmt.Errorf("%d bytes is more than the %d allowed", n, maxSpecialSize)
	}
	if n > s.size-off {
		return nil, fmt.Errorf("the archive ends inside it")
	}
	buf := make([]byte, n)
	if k, err := s.r.ReadAt(buf, off); k < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// pending holds what special headers said about the next real entry.
type pending struct {
	longName, longLink *string
	pax                []paxRecord
}

// scan indexes the archive. It fails only when the first header is not a
// tar header; after that every problem becomes a warning and the scan
// keeps what it has.
func (s *scanner) scan() error {
	var p pending
	var off int64
	for first := true; ; first = false {
		if off >= s.size {
			if first {
				return &FormatError{"the file is empty"}
			}
			s.warnf(off, "", "the archive ends without an end-of-archive marker")
			return nil
		}
		if s.size-off < blockSize {
			if first {
				return &FormatError{fmt.Sprintf("%d bytes is too short for a tar archive", s.size)}
			}
			s.warnf(off, "", "the archive ends with a partial header of %d bytes", s.size-off)
			return nil
		}
		b, err := s.block(off)
		if err != nil {
			return err
		}
		if isZeroBlock(b) {
			if first {
				s.warnf(0, "", "the archive has no members")
			}
			s.afterEnd(off)
			return nil
		}
		h := rawHeader(b)
		if !h.checksumOK() {
			if first {
				return &FormatError{noTarHeader}
			}
			next, ok := s.resync(off)
			if !ok {
				s.warnf(off, "", "invalid header checksum, and no valid header in the next %d MiB: nothing from this offset on is indexed", resyncLimit>>20)
				return nil
			}
			s.warnf(off, "", "invalid header checksum: skipped %d damaged bytes to the next valid header at offset %d, as tar -x does; members after it may be unreliable", next-off, next)
			p = pending{}
			off = next
			continue
		}
		next, stop := s.header(off, h, &p)
		if stop {
			return nil
		}
		off = next
	}
}

// header handles one valid header at off and returns the offset of the
// next one, or stop when the rest of the archive cannot be located.
func (s *scanner) header(off int64, h rawHeader, p *pending) (next int64, stop bool) {
	typ := h[offType]
	hdrSize, err := parseNumber(h[offSize : offSize+12])
	if err != nil || hdrSize < 0 {
		s.warnf(off, h.name(), "invalid size field %q: the next header cannot be located, so nothing after it is indexed", h[offSize:offSize+12])
		return 0, true
	}
	dataOff := off + blockSize

	switch typ {
	case typeXHeader, typeXGlobal, typeGNULong, typeGNULink:
		padded, ok := paddedSize(hdrSize)
		if !ok || dataOff > s.size-padded {
			s.warnf(off, "", "%s header of %d bytes runs past the end of the archive", specialName(typ), hdrSize)
			return 0, true
		}
		data, err := s.readSpecial(dataOff, hdrSize)
		if err != nil {
			s.warnf(off, "", "%s header ignored: %v", specialName(typ), err)
		} else {
			s.special(off, typ, data, p)
		}
		return dataOff + padded, false
	}

	e := entry{hdrOff: off, typ: typ, rawName: h.name(), linkname: cString(h[offLinkname : offLinkname+100])}
	e.mode, _ = parseNumber(h[offMode : offMode+8])
	uid, _ := parseNumber(h[offUID : offUID+8])
	gid, _ := parseNumber(h[offGID : offGID+8])
	e.uid, e.gid = int(uid), int(gid)
	if mt, err := parseNumber(h[offMtime : offMtime+12]); err == nil {
		e.mtime = time.Unix(mt, 0)
	}
	if p.longName != nil {
		e.rawName = *p.longName
	}
	if p.longLink != nil {
		e.linkname = *p.longLink
	}
	stored := hdrSize
	recs := append(append([]paxRecord(nil), s.globals...), p.pax...)
	for _, r := range recs {
		var err error
		switch r.key {
		case "path":
			e.rawName = r.value
		case "linkpath":
			e.linkname = r.value
		case "size":
			stored, err = parsePaxInt(r.key, r.value)
		case "mtime":
			e.mtime, err = parsePaxTime(r.value)
		case "uid":
			var v int64
			v, err = parsePaxInt(r.key, r.value)
			e.uid = int(v)
		case "gid":
			var v int64
			v, err = parsePaxInt(r.key, r.value)
			e.gid = int(v)
		}
		if err != nil {
			s.warnf(off, e.rawName, "pax record ignored: %v", err)
		}
	}
	e.tar = tarHeaderOf(h, p, s.globals, e.rawName)
	*p = pending{}

	// Link, directory and device entries carry no data, but their size
	// field still says how many bytes to skip.
	padded, ok := paddedSize(stored)
	if !ok {
		s.warnf(off, e.rawName, "size %d is invalid: nothing after this header is indexed", stored)
		return 0, true
	}
	if typ == typeGNUSparse {
		return s.gnuSparse(off, h, e, stored)
	}
	e.size = stored
	if ps, sparse, err := parsePaxSparse(recs); sparse {
		if err != nil {
			s.warnf(off, e.rawName, "sparse member skipped: %v", err)
			return s.skip(dataOff, padded, e)
		}
		return s.paxSparseEntry(off, dataOff, padded, e, ps)
	}
	if isRegular(typ) && stored > 0 {
		e.one[0] = fragment{off: 0, len: stored, phys: dataOff}
		e.frags = e.one[:]
	}
	e.avail = e.size
	if isRegular(typ) && dataOff+stored > s.size {
		e.avail = max(0, s.size-dataOff)
		s.emit(&e)
		s.warnf(off, e.rawName, "truncated: the archive holds %d of its %d bytes; reads past byte %d fail", e.avail, e.size, e.avail)
		return 0, true
	}
	s.emit(&e)
	return s.skip(dataOff, padded, entry{})
}

// skip moves past a member's data, warning when the archive ends inside
// its padding or data.
func (s *scanner) skip(dataOff, padded int64, e entry) (int64, bool) {
	if dataOff > s.size-padded {
		if e.rawName != "" {
			s.warnf(e.hdrOff, e.rawName, "the archive ends inside this entry's data")
		}
		return s.size, false
	}
	return dataOff + padded, false
}

func isRegular(typ byte) bool {
	return typ == typeReg || typ == typeRegA || typ == typeCont || typ == typeGNUSparse
}

func specialName(typ byte) string {
	switch typ {
	case typeXHeader:
		return "pax"
	case typeXGlobal:
		return "pax global"
	case typeGNULong:
		return "GNU long name"
	case typeGNULink:
		return "GNU long link name"
	}
	return fmt.Sprintf("type %q", typ)
}

func (s *scanner) special(off int64, typ byte, data []byte, p *pending) {
	switch typ {
	case typeGNULong, typeGNULink:
		// GNU tar NUL-terminates these; a NUL inside is kept so that the
		// name check refuses the member rather than silently cutting it.
		v := string(bytes.TrimRight(data, "\x00"))
		if typ == typeGNULong {
			p.longName = &v
		} else {
			p.longLink = &v
		}
	case typeXHeader, typeXGlobal:
		recs, err := parsePax(data)
		if err != nil {
			s.warnf(off, "", "%s header partly ignored: %v", specialName(typ), err)
		}
		if typ == typeXHeader {
			p.pax = recs
			return
		}
		// Global records apply to every later member. A global path gives
		// them all one name, so only the last survives, which is also what
		// tar -x leaves; a global size would change where every later
		// header is, so it is not trusted.
		for _, r := range recs {
			if r.key == "size" {
				s.warnf(off, "", "global pax record %q ignored", r.key)
				continue
			}
			if r.key == "path" {
				s.warnf(off, "", "global pax record path=%q names every later member", r.value)
			}
			s.globals = append(s.globals, r)
		}
	}
}

// resyncLimit bounds how far past a damaged header the scan looks for the
// next valid one, so that damage near the start of a huge archive cannot
// turn indexing into a read of the whole file.
const resyncLimit = 16 << 20

// resync finds the next block after the damaged header at off that is a
// valid header, as GNU tar does ("Skipping to next header").
func (s *scanner) resync(off int64) (int64, bool) {
	for next := off + blockSize; next+blockSize <= s.size && next-off <= resyncLimit; next += blockSize {
		b, err := s.block(next)
		if err != nil {
			return 0, false
		}
		if !isZeroBlock(b) && rawHeader(b).checksumOK() {
			return next, true
		}
	}
	return 0, false
}

// afterEnd checks what follows the end-of-archive marker at off. tar -x
// stops at the marker, and so do we, but garbage or a second archive after
// it deserves a warning.
func (s *scanner) afterEnd(off int64) {
	rest := s.size - off
	const look = 1 << 20
	buf := make([]byte, min(rest, look))
	k, _ := s.r.ReadAt(buf, off)
	buf = buf[:k]
	nz := bytes.IndexFunc(buf, func(r rune) bool { return r != 0 })
	if nz < 0 {
		return
	}
	at := off + int64(nz)
	if blk := (int64(nz) / blockSize) * blockSize; blk+blockSize <= int64(len(buf)) && rawHeader(buf[blk:blk+blockSize]).checksumOK() {
		s.warnf(off, "", "another tar archive starts at offset %d, after the end-of-archive marker (concatenated archives?); its members are ignored, as tar -x ignores them", off+blk)
		return
	}
	s.warnf(off, "", "%d bytes after the end-of-archive marker are not zeros (trailing garbage from offset %d); ignored", s.size-at, at)
}

// noTarHeader is why a file is not a tar archive: what it is instead is
// the package model's to say (see package appliance).
const noTarHeader = "no valid tar header at the start of the file"
