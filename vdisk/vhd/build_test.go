package vhd

import (
	"encoding/binary"
	"math/rand"
	"unicode/utf16"
)

// This file builds VHD images in memory, for what qemu-img cannot write:
// other block sizes, other creators and geometries, shuffled block layouts,
// differencing disks and 511-byte footers.

var be = binary.BigEndian

type locator struct {
	code string
	data []byte
}

type spec struct {
	data      []byte // virtual content
	curSize   uint64 // current_size; 0 means len(data)
	diskType  uint32 // 2 fixed, 3 dynamic, 4 differencing
	blockSize uint32 // dynamic: 0 means 2 MiB
	creator   string // 0 means "win "
	cyls      uint16 // geometry; all zero means the maximal 65535/16/255
	heads     uint8
	spt       uint8
	shuffle   int64 // dynamic: seed for a random physical block order; 0 keeps the virtual order
	parent    string
	locators  []locator
	short     bool // fixed: write an old 511-byte footer
}

func (s spec) footer(dataOffset uint64) []byte {
	f := make([]byte, footerSize)
	copy(f, cookieFooter)
	be.PutUint32(f[8:], 2)
	be.PutUint32(f[12:], formatVersion)
	be.PutUint64(f[16:], dataOffset)
	be.PutUint32(f[24:], 0x2a2a2a2a)
	creator := s.creator
	if creator == "" {
		creator = "win "
	}
	copy(f[28:32], creator)
	be.PutUint32(f[32:], 0x000a0000)
	copy(f[36:40], "Wi2k")
	cur := s.curSize
	if cur == 0 {
		cur = uint64(len(s.data))
	}
	be.PutUint64(f[40:], cur)
	be.PutUint64(f[48:], cur)
	if s.cyls == 0 && s.heads == 0 && s.spt == 0 {
		s.cyls, s.heads, s.spt = 65535, 16, 255
	}
	be.PutUint16(f[56:], s.cyls)
	f[58], f[59] = s.heads, s.spt
	be.PutUint32(f[60:], s.diskType)
	copy(f[68:84], "0123456789abcdef")
	be.PutUint32(f[checksumOff:], checksum(f, checksumOff))
	return f
}

// build writes the image s describes: a fixed disk is the data and a
// footer; a dynamic or differencing disk is a footer copy, the dynamic
// header at 512, the BAT at 1536, the blocks holding nonzero data (each a
// full bitmap and the block) and the footer.
func build(s spec) []byte {
	if s.diskType == diskFixed {
		f := s.footer(^uint64(0))
		if s.short {
			f = f[:shortFooterSize]
			be.PutUint32(f[checksumOff:], checksum(f, checksumOff))
		}
		return append(append([]byte(nil), s.data...), f...)
	}
	bs := int(s.blockSize)
	if bs == 0 {
		bs = 2 << 20
	}
	n := (len(s.data) + bs - 1) / bs
	const batOff = 1536
	batBytes := (4*n + 511) / 512 * 512
	bitmap := ((bs/512+7)/8 + 511) / 512 * 512

	var used []int
	for b := range n {
		blk := s.data[b*bs : min((b+1)*bs, len(s.data))]
		for _, c := range blk {
			if c != 0 {
				used = append(used, b)
				break
			}
		}
	}
	if s.shuffle != 0 {
		rand.New(rand.NewSource(s.shuffle)).Shuffle(len(used), func(i, j int) { used[i], used[j] = used[j], used[i] })
	}

	var locData []byte
	locStart := batOff + batBytes
	for _, l := range s.locators {
		locData = append(locData, l.data...)
		locData = append(locData, make([]byte, (512-len(l.data)%512)%512)...)
	}
	blocksStart := locStart + len(locData)
	out := make([]byte, blocksStart, blocksStart+len(used)*(bitmap+bs)+footerSize)
	copy(out, s.footer(512))

	h := out[512 : 512+dynHeaderSize]
	copy(h, cookieDynamic)
	be.PutUint64(h[8:], ^uint64(0))
	be.PutUint64(h[16:], batOff)
	be.PutUint32(h[24:], formatVersion)
	be.PutUint32(h[28:], uint32(n))
	be.PutUint32(h[32:], uint32(bs))
	for i, u := range utf16.Encode([]rune(s.parent)) {
		be.PutUint16(h[parentNameOff+2*i:], u)
	}
	pos := locStart
	for i, l := range s.locators {
		e := h[locatorOff+i*locatorSize:]
		copy(e, l.code)
		space := (len(l.data) + 511) / 512 * 512
		be.PutUint32(e[4:], uint32(space))
		be.PutUint32(e[8:], uint32(len(l.data)))
		be.PutUint64(e[16:], uint64(pos))
		pos += space
	}
	be.PutUint32(h[dynChecksumOff:], checksum(h, dynChecksumOff))
	copy(out[locStart:], locData)

	bat := out[batOff : batOff+batBytes]
	for i := range bat {
		bat[i] = 0xff
	}
	for _, b := range used {
		be.PutUint32(bat[4*b:], uint32(len(out)/512))
		for range bitmap {
			out = append(out, 0xff)
		}
		blk := s.data[b*bs : min((b+1)*bs, len(s.data))]
		out = append(out, blk...)
		out = append(out, make([]byte, bs-len(blk))...)
	}
	return append(out, s.footer(512)...)
}

// fixSums recomputes the checksums of the footers (at offset 0 and at the
// end) and of the dynamic header the end footer points at, after a test
// has changed fields in them.
func fixSums(img []byte) {
	fix := func(b []byte, field int) { be.PutUint32(b[field:], checksum(b, field)) }
	if len(img) >= footerSize && string(img[:8]) == cookieFooter {
		fix(img[:footerSize], checksumOff)
	}
	if len(img) < footerSize {
		return
	}
	tail := img[len(img)-footerSize:]
	if string(tail[:8]) != cookieFooter {
		return
	}
	fix(tail, checksumOff)
	if off := be.Uint64(tail[16:]); off < uint64(len(img)) && uint64(len(img))-off >= dynHeaderSize {
		h := img[off : off+dynHeaderSize]
		if string(h[:8]) == cookieDynamic {
			fix(h, dynChecksumOff)
		}
	}
}

// setBoth applies put to the field at off in both footer copies.
func setBoth(img []byte, off int, put func([]byte)) {
	put(img[off:])
	put(img[len(img)-footerSize+off:])
}
