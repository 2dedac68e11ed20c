package ova

import (
	"bytes"
	"fmt"
	"strconv"
)

// rawTar builds tar archives header by header, so that tests can write the
// malformed and unusual archives that archive/tar refuses to produce.
type rawTar struct{ bytes.Buffer }

type hdr struct {
	name, linkname string
	typ            byte
	mode           int64
	size           int64  // header size field; -1 writes sizeField as is
	sizeField      []byte // raw 12-byte size field, overrides size
	mtime          int64
	magic          string // "ustar\x0000" (default), "ustar  \x00" (GNU), "v7"
	prefix         string
	badChecksum    bool
	gnuSparse      []sparseEntry // inline old-GNU sparse map (at most 4)
	gnuRealSize    int64
	gnuExtended    bool
}

func octal(dst []byte, v int64) {
	s := strconv.FormatInt(v, 8)
	for len(s) < len(dst)-1 {
		s = "0" + s
	}
	copy(dst, s)
}

func (t *rawTar) header(h hdr) {
	var b [blockSize]byte
	copy(b[offName:offName+100], h.name)
	mode := h.mode
	if mode == 0 {
		mode = 0o644
	}
	octal(b[offMode:offMode+8], mode)
	octal(b[offUID:offUID+8], 1000)
	octal(b[offGID:offGID+8], 1000)
	if h.sizeField != nil {
		copy(b[offSize:offSize+12], h.sizeField)
	} else {
		octal(b[offSize:offSize+12], h.size)
	}
	mt := h.mtime
	if mt == 0 {
		mt = 1700000000
	}
	octal(b[offMtime:offMtime+12], mt)
	typ := h.typ
	if typ == 0 {
		typ = typeReg
	}
	b[offType] = typ
	copy(b[offLinkname:offLinkname+100], h.linkname)
	switch h.magic {
	case "", "ustar":
		copy(b[offMagic:], "ustar\x0000")
		copy(b[offPrefix:offPrefix+155], h.prefix)
	case "gnu":
		copy(b[offMagic:], "ustar  \x00")
		for i, e := range h.gnuSparse {
			octal(b[offGNUSparse+24*i:offGNUSparse+24*i+12], e.off)
			octal(b[offGNUSparse+24*i+12:offGNUSparse+24*i+24], e.len)
		}
		if h.gnuExtended {
			b[offGNUIsExtended] = 1
		}
		if h.typ == typeGNUSparse {
			octal(b[offGNURealSize:offGNURealSize+12], h.gnuRealSize)
		}
	case "v7":
	}
	copy(b[offChksum:offChksum+8], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	if h.badChecksum {
		sum++
	}
	octal(b[offChksum:offChksum+7], sum)
	b[offChksum+7] = ' '
	t.Write(b[:])
}

// data writes member data padded to a block.
func (t *rawTar) data(d []byte) {
	t.Write(d)
	if pad := len(d) % blockSize; pad != 0 {
		t.Write(make([]byte, blockSize-pad))
	}
}

// file writes a regular file header and its data.
func (t *rawTar) file(name string, d []byte) {
	t.header(hdr{name: name, size: int64(len(d))})
	t.data(d)
}

// pax writes a pax extended header with the records in order.
func (t *rawTar) pax(typ byte, recs ...string) {
	var body bytes.Buffer
	for i := 0; i+1 < len(recs); i += 2 {
		body.WriteString(paxLine(recs[i], recs[i+1]))
	}
	t.header(hdr{name: "PaxHeaders/x", typ: typ, size: int64(body.Len())})
	t.data(body.Bytes())
}

func paxLine(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for {
		l := len(strconv.Itoa(n+len(strconv.Itoa(n)))) + len(rec)
		if l == n+len(strconv.Itoa(n)) || l == n {
			n = l
			break
		}
		n = l - len(strconv.Itoa(n)) + len(strconv.Itoa(l))
	}
	s := fmt.Sprintf("%d%s", n, rec)
	if len(s) != n { // settle the self-referential length
		s = fmt.Sprintf("%d%s", len(s), rec)
	}
	return s
}

// end writes the two zero blocks that end an archive.
func (t *rawTar) end() { t.Write(make([]byte, 2*blockSize)) }
