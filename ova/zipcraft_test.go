package ova

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"sort"
)

// craft writes zip archives by hand, for what no tool writes: offsets past
// 4 GiB in a file that is mostly a hole, lying counts, overlapping
// entries, names of any bytes. The archive is a list of segments; the
// bytes between them read as zeros.
type craft struct {
	segs []seg
	pos  int64
	cd   []byte
	n    uint64
}

type seg struct {
	off int64
	b   []byte
}

type centry struct {
	name     string
	method   uint16
	flags    uint16
	creator  byte // host of "version made by"
	attr     uint32
	data     []byte // the bytes stored
	crc      uint32 // 0: the CRC-32 of data
	usize    int64  // -1: len(data)
	zip64    bool   // sizes and offset in zip64 extra fields
	at       int64  // -1: a new local header here; else point at this offset
	extra    []byte // more central extra fields
	cdMethod int    // -1: method; else the central directory says this one
}

func newCentry(name string, data []byte) centry {
	return centry{name: name, data: data, creator: 3, attr: 0o100644 << 16, usize: -1, at: -1, cdMethod: -1}
}

func (c *craft) put(b []byte) int64 {
	at := c.pos
	c.segs = append(c.segs, seg{at, b})
	c.pos += int64(len(b))
	return at
}

func (c *craft) skip(n int64) { c.pos += n }

func (c *craft) add(e centry) int64 {
	le := binary.LittleEndian
	crc := e.crc
	if crc == 0 {
		crc = crc32.ChecksumIEEE(e.data)
	}
	usize := e.usize
	if usize < 0 {
		usize = int64(len(e.data))
	}
	at := e.at
	if at < 0 {
		h := make([]byte, 30, 30+len(e.name)+20)
		le.PutUint32(h, sigLocal)
		le.PutUint16(h[4:], 45)
		le.PutUint16(h[6:], e.flags)
		le.PutUint16(h[8:], e.method)
		le.PutUint16(h[12:], 0x5821) // 2024-01-01
		le.PutUint32(h[14:], crc)
		le.PutUint16(h[26:], uint16(len(e.name)))
		if e.zip64 {
			le.PutUint32(h[18:], 0xffffffff)
			le.PutUint32(h[22:], 0xffffffff)
			le.PutUint16(h[28:], 20)
		} else {
			le.PutUint32(h[18:], uint32(len(e.data)))
			le.PutUint32(h[22:], uint32(usize))
		}
		h = append(h, e.name...)
		if e.zip64 {
			h = le.AppendUint16(h, 1)
			h = le.AppendUint16(h, 16)
			h = le.AppendUint64(h, uint64(usize))
			h = le.AppendUint64(h, uint64(len(e.data)))
		}
		at = c.put(h)
		c.put(e.data)
	}
	method := e.method
	if e.cdMethod >= 0 {
		method = uint16(e.cdMethod)
	}
	r := make([]byte, 46)
	le.PutUint32(r, sigCentral)
	r[4], r[5] = 45, e.creator
	le.PutUint16(r[6:], 45)
	le.PutUint16(r[8:], e.flags)
	le.PutUint16(r[10:], method)
	le.PutUint16(r[14:], 0x5821)
	le.PutUint32(r[16:], crc)
	le.PutUint16(r[28:], uint16(len(e.name)))
	le.PutUint32(r[38:], e.attr)
	x := append([]byte(nil), e.extra...)
	if e.zip64 {
		le.PutUint32(r[20:], 0xffffffff)
		le.PutUint32(r[24:], 0xffffffff)
		le.PutUint32(r[42:], 0xffffffff)
		z := le.AppendUint16(nil, 1)
		z = le.AppendUint16(z, 24)
		z = le.AppendUint64(z, uint64(usize))
		z = le.AppendUint64(z, uint64(len(e.data)))
		z = le.AppendUint64(z, uint64(at))
		x = append(z, x...)
	} else {
		le.PutUint32(r[20:], uint32(len(e.data)))
		le.PutUint32(r[24:], uint32(usize))
		le.PutUint32(r[42:], uint32(at))
	}
	le.PutUint16(r[30:], uint16(len(x)))
	r = append(append(r, e.name...), x...)
	c.cd = append(c.cd, r...)
	c.n++
	return at
}

// finish writes the central directory and the end records. count, if
// not negative, replaces the true entry count.
func (c *craft) finish(zip64 bool, count int64) *sparseBytes {
	le := binary.LittleEndian
	n := c.n
	if count >= 0 {
		n = uint64(count)
	}
	cdOff := c.put(c.cd)
	if zip64 {
		z := le.AppendUint32(nil, sigEnd64)
		z = le.AppendUint64(z, 44)
		z = le.AppendUint16(z, 45)
		z = le.AppendUint16(z, 45)
		z = le.AppendUint32(z, 0)
		z = le.AppendUint32(z, 0)
		z = le.AppendUint64(z, n)
		z = le.AppendUint64(z, n)
		z = le.AppendUint64(z, uint64(len(c.cd)))
		z = le.AppendUint64(z, uint64(cdOff))
		at := c.put(z)
		l := le.AppendUint32(nil, sigLocator64)
		l = le.AppendUint32(l, 0)
		l = le.AppendUint64(l, uint64(at))
		l = le.AppendUint32(l, 1)
		c.put(l)
	}
	e := le.AppendUint32(nil, sigEnd)
	e = le.AppendUint32(e, 0)
	if zip64 {
		e = le.AppendUint16(e, 0xffff)
		e = le.AppendUint16(e, 0xffff)
		e = le.AppendUint32(e, 0xffffffff)
		e = le.AppendUint32(e, 0xffffffff)
	} else {
		e = le.AppendUint16(e, uint16(n))
		e = le.AppendUint16(e, uint16(n))
		e = le.AppendUint32(e, uint32(len(c.cd)))
		e = le.AppendUint32(e, uint32(cdOff))
	}
	e = le.AppendUint16(e, 0)
	c.put(e)
	return &sparseBytes{segs: c.segs, size: c.pos}
}

// sparseBytes is a file of the given size holding segs, zeros elsewhere.
type sparseBytes struct {
	segs []seg
	size int64
}

func (s *sparseBytes) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	clear(p[:n])
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].off+int64(len(s.segs[i].b)) > off })
	for ; i < len(s.segs) && s.segs[i].off < off+int64(n); i++ {
		g := s.segs[i]
		lo, hi := max(g.off, off), min(g.off+int64(len(g.b)), off+int64(n))
		copy(p[lo-off:hi-off], g.b[lo-g.off:hi-g.off])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// bytes flattens a small archive.
func (s *sparseBytes) bytes() []byte {
	b := make([]byte, s.size)
	s.ReadAt(b, 0)
	return b
}
