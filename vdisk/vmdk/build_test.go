package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
)

// spec describes a small sparse file built by hand, for layouts and
// defects no tool writes on request: legacy grain records, zeroed-grain
// entries, COWD, tiny grains and tables (fuzz seeds of a few KB).
type spec struct {
	cowd         bool
	version      uint32
	grainSectors uint64
	gtes         uint64
	compressed   bool
	markers      bool // grain markers (flags bit 17) on compressed grains
	atEnd        bool // GD_AT_END with footer; compressed streams only
	zeroFlag     bool // flags bit 2
	zeroGrains   map[int]bool
	data         []byte // the disk; its length is rounded up to sectors
	createType   string
	parentHint   string
}

// built is a spec's file and where its structures landed, so tests can
// corrupt precise fields.
type built struct {
	file      []byte
	gdAt      int64   // byte offset of the grain directory
	gtAt      []int64 // byte offset of each grain table (0 if none)
	grainAt   []int64 // byte offset of each grain's record (0 if none)
	footerAt  int64   // byte offset of the footer header (atEnd only)
	capacity  uint64
	grainSize int64
}

func sectors(n int) int { return (n + 511) / 512 }

func pad(b []byte) []byte { return append(b, make([]byte, sectors(len(b))*512-len(b))...) }

func (s spec) build() built {
	if s.version == 0 {
		s.version = 1
	}
	if s.cowd {
		s.gtes = cowdGTEsPerGT
	}
	capacity := uint64(sectors(len(s.data)))
	data := pad(append([]byte(nil), s.data...))
	g := int64(s.grainSectors * 512)
	nGrains := int((capacity + s.grainSectors - 1) / s.grainSectors)
	nGT := (nGrains + int(s.gtes) - 1) / int(s.gtes)
	gtSecs := sectors(int(s.gtes) * 4)
	gdSecs := sectors(nGT * 4)
	b := built{capacity: capacity, grainSize: g, gtAt: make([]int64, nGT), grainAt: make([]int64, nGrains)}

	// Grain records, and the GTE each needs: 0 for all-zero grains, 1 for
	// grains listed in zeroGrains.
	records := make([][]byte, nGrains)
	gte := make([]uint32, nGT*int(s.gtes))
	for i := range nGrains {
		chunk := data[int64(i)*g : min(int64(i+1)*g, int64(len(data)))]
		switch {
		case s.zeroGrains[i]:
			gte[i] = 1
			continue
		case bytes.Count(chunk, []byte{0}) == len(chunk):
			continue
		}
		if !s.compressed {
			full := make([]byte, g)
			copy(full, chunk)
			records[i] = full
			continue
		}
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(chunk)
		zw.Close()
		var rec []byte
		if s.markers {
			rec = binary.LittleEndian.AppendUint64(rec, uint64(i)*s.grainSectors)
		}
		rec = binary.LittleEndian.AppendUint32(rec, uint32(z.Len()))
		records[i] = pad(append(rec, z.Bytes()...))
	}

	hdr := func(gdOffset, overHead uint64) []byte {
		h := make([]byte, 512)
		le := binary.LittleEndian
		if s.cowd {
			copy(h, "COWD")
			le.PutUint32(h[4:], 1)
			le.PutUint32(h[12:], uint32(capacity))
			le.PutUint32(h[16:], uint32(s.grainSectors))
			le.PutUint32(h[20:], uint32(gdOffset))
			le.PutUint32(h[24:], uint32(nGT))
			return h
		}
		copy(h, "KDMV")
		flags := uint32(1)
		if s.zeroFlag {
			flags |= flagZeroGrain
		}
		if s.compressed {
			flags |= flagCompressed
			if s.markers {
				flags |= flagMarkers
			}
		}
		le.PutUint32(h[4:], s.version)
		le.PutUint32(h[8:], flags)
		le.PutUint64(h[12:], capacity)
		le.PutUint64(h[20:], s.grainSectors)
		le.PutUint64(h[28:], 1)
		le.PutUint64(h[36:], 1)
		le.PutUint32(h[44:], uint32(s.gtes))
		le.PutUint64(h[56:], gdOffset)
		le.PutUint64(h[64:], overHead)
		copy(h[73:], "\n \r\n")
		if s.compressed {
			le.PutUint16(h[77:], 1)
		}
		return h
	}
	ct := s.createType
	if ct == "" {
		ct = "monolithicSparse"
		if s.compressed {
			ct = "streamOptimized"
		}
	}
	desc := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=%q\n", ct)
	if s.parentHint != "" {
		desc = fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=87654321\ncreateType=%q\nparentFileNameHint=%q\n", ct, s.parentHint)
	}
	desc += fmt.Sprintf("\nRW %d SPARSE \"renamed-away.vmdk\"\n", capacity)
	if len(desc) > 512 {
		panic("descriptor too long")
	}

	u32s := func(v []uint32) []byte {
		out := make([]byte, 0, 4*len(v))
		for _, x := range v {
			out = binary.LittleEndian.AppendUint32(out, x)
		}
		return out
	}
	marker := func(n uint64, typ uint32) []byte {
		m := make([]byte, 512)
		binary.LittleEndian.PutUint64(m, n)
		binary.LittleEndian.PutUint32(m[12:], typ)
		return m
	}
	placeGrains := func(f []byte) []byte {
		for i, rec := range records {
			if rec != nil {
				b.grainAt[i] = int64(len(f))
				gte[i] = uint32(len(f) / 512)
				f = append(f, rec...)
			}
		}
		return f
	}

	if s.cowd {
		// COWD: header, directory, tables, grains; no descriptor.
		f := hdr(1, 0)
		b.gdAt = 512
		gtStart := 1 + gdSecs
		overHead := gtStart + nGT*gtSecs
		f = append(f, make([]byte, (overHead-1)*512)...)
		f = placeGrains(f)
		gd := make([]uint32, nGT)
		for t := range nGT {
			gd[t] = uint32(gtStart + t*gtSecs)
			b.gtAt[t] = int64(gd[t]) * 512
			copy(f[b.gtAt[t]:], u32s(gte[t*int(s.gtes):(t+1)*int(s.gtes)]))
		}
		copy(f[b.gdAt:], u32s(gd))
		b.file = f
		return b
	}

	if !s.atEnd {
		// Tables at the front, as qemu-img and open-vmdk write them.
		gdAt := 2
		gtStart := gdAt + gdSecs
		overHead := gtStart + nGT*gtSecs
		f := append(hdr(uint64(gdAt), uint64(overHead)), pad([]byte(desc))...)
		f = append(f, make([]byte, (overHead-2)*512)...)
		f = placeGrains(f)
		gd := make([]uint32, nGT)
		for t := range nGT {
			gd[t] = uint32(gtStart + t*gtSecs)
			b.gtAt[t] = int64(gd[t]) * 512
			copy(f[b.gtAt[t]:], u32s(gte[t*int(s.gtes):(t+1)*int(s.gtes)]))
		}
		b.gdAt = int64(gdAt) * 512
		copy(f[b.gdAt:], u32s(gd))
		b.file = f
		return b
	}

	// The ovftool layout: grains, then each table behind a GT marker, the
	// directory behind a GD marker, the footer and end of stream.
	f := append(hdr(gdAtEnd, 2), pad([]byte(desc))...)
	f = placeGrains(f)
	gd := make([]uint32, nGT)
	for t := range nGT {
		f = append(f, marker(uint64(gtSecs), markerGT)...)
		gd[t] = uint32(len(f) / 512)
		b.gtAt[t] = int64(len(f))
		f = append(f, pad(u32s(gte[t*int(s.gtes):(t+1)*int(s.gtes)]))...)
	}
	f = append(f, marker(uint64(gdSecs), markerGD)...)
	b.gdAt = int64(len(f))
	f = append(f, pad(u32s(gd))...)
	f = append(f, marker(1, markerFooter)...)
	b.footerAt = int64(len(f))
	f = append(f, hdr(uint64(b.gdAt/512), 2)...)
	f = append(f, make([]byte, 512)...)
	b.file = f
	return b
}

// pattern returns n bytes of compressible but position-dependent data,
// with the grains listed in holes (of grain bytes each) left zero.
func pattern(n int, grain int, holes ...int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/7) ^ byte(i>>9)
	}
	for _, h := range holes {
		clear(b[h*grain : min((h+1)*grain, n)])
	}
	return b
}
