package vmdkwriter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zlib"
	"github.com/ovfmount/ovfmount/internal/readat"
)

const (
	sectorSize   = 512
	grainSectors = 128 // 64 KiB grains, as every stream writer uses
	grainBytes   = grainSectors * sectorSize
	gtEntries    = 512
	gtSectors    = gtEntries * 4 / sectorSize
	overHead     = 128 // sectors before the first grain
	gdAtEnd      = ^uint64(0)

	// version 3 with the newline test, compression and markers: what ESX
	// requires of a stream-optimized disk.
	version = 3
	flags   = 1<<0 | 1<<16 | 1<<17

	markerGT     = 1
	markerGD     = 2
	markerFooter = 3

	// maxSize keeps the grain directory's u32 sector numbers in range.
	maxSize = 1 << 40
)

// Write writes the size bytes of disk as a streamOptimized VMDK to w. A
// size that is not a multiple of 512 is padded with zeros to a whole
// sector; the last grain is compressed only up to the disk's end, as qemu
// does.
func Write(w io.Writer, disk io.ReaderAt, size int64) error {
	if size <= 0 || size > maxSize {
		return fmt.Errorf("vmdkwriter: disk size %d outside 1..%d", size, int64(maxSize))
	}
	capacity := uint64(size+sectorSize-1) / sectorSize
	grains := (capacity + grainSectors - 1) / grainSectors
	tables := (grains + gtEntries - 1) / gtEntries

	desc := descriptor(capacity)
	descSectors := uint64(len(desc)+sectorSize-1) / sectorSize
	if 1+descSectors > overHead {
		return errors.New("vmdkwriter: descriptor does not fit before the first grain")
	}

	out := &sectorWriter{w: bufio.NewWriterSize(w, 1<<20)}
	hdr := header(capacity, descSectors, gdAtEnd)
	out.write(hdr)
	out.write(desc)
	out.padTo(overHead * sectorSize)

	// Generating test data quickly matters more here than a small file.
	zw, err := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	if err != nil {
		return err
	}
	var packed bytes.Buffer
	buf := make([]byte, grainBytes)
	gd := make([]uint32, tables)
	for t := uint64(0); t < tables && out.err == nil; t++ {
		var gt [gtEntries]uint32
		used := false
		for i := uint64(0); i < gtEntries; i++ {
			g := t*gtEntries + i
			if g >= grains {
				break
			}
			off := int64(g * grainBytes)
			n := min(int64(grainBytes), size-off)
			if err := readat.Full(disk, buf[:n], off); err != nil {
				return fmt.Errorf("vmdkwriter: reading the disk at %d: %w", off, err)
			}
			if bytes.Equal(buf[:n], zeroGrain[:n]) {
				continue
			}
			// Inside the disk's last sector, bytes past size are zeros.
			keep := min(int64(grainBytes), int64(capacity*sectorSize)-off)
			clear(buf[n:keep])
			packed.Reset()
			zw.Reset(&packed)
			if _, err := zw.Write(buf[:keep]); err != nil {
				return err
			}
			if err := zw.Close(); err != nil {
				return err
			}
			gt[i] = out.sector()
			var m [12]byte
			binary.LittleEndian.PutUint64(m[0:], g*grainSectors)
			binary.LittleEndian.PutUint32(m[8:], uint32(packed.Len()))
			out.write(m[:])
			out.write(packed.Bytes())
			out.pad()
			used = true
		}
		if !used {
			continue
		}
		out.marker(gtSectors, markerGT)
		gd[t] = out.sector()
		out.write(u32s(gt[:]))
	}

	gdSectors := (uint64(len(gd))*4 + sectorSize - 1) / sectorSize
	out.marker(gdSectors, markerGD)
	gdAt := out.sector()
	out.write(u32s(gd))
	out.pad()

	out.marker(1, markerFooter)
	out.write(header(capacity, descSectors, uint64(gdAt)))
	out.write(make([]byte, sectorSize)) // end-of-stream marker
	if out.err != nil {
		return out.err
	}
	return out.w.Flush()
}

// header returns a 512-byte SparseExtentHeader.
func header(capacity, descSectors, gdOffset uint64) []byte {
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	copy(b, "KDMV")
	le.PutUint32(b[4:], version)
	le.PutUint32(b[8:], flags)
	le.PutUint64(b[12:], capacity)
	le.PutUint64(b[20:], grainSectors)
	le.PutUint64(b[28:], 1) // descriptorOffset
	le.PutUint64(b[36:], descSectors)
	le.PutUint32(b[44:], gtEntries)
	le.PutUint64(b[48:], 0) // no redundant grain directory
	le.PutUint64(b[56:], gdOffset)
	le.PutUint64(b[64:], overHead)
	copy(b[73:], "\n \r\n")
	le.PutUint16(b[77:], 1) // deflate
	return b
}

// descriptor returns the embedded descriptor text. The CID is derived from
// the capacity so that the output is reproducible.
func descriptor(capacity uint64) []byte {
	var c [8]byte
	binary.LittleEndian.PutUint64(c[:], capacity)
	cylinders := min(capacity/(255*63), 65535)
	return fmt.Appendf(nil, `# Disk DescriptorFile
version=1
CID=%08x
parentCID=ffffffff
createType="streamOptimized"

# Extent description
RDONLY %d SPARSE "disk.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "%d"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.virtualHWVersion = "4"
`, crc32.ChecksumIEEE(c[:]), capacity, cylinders)
}

// sectorWriter tracks the output position, so grain tables and the
// directory can record sector numbers while the file is streamed, and
// keeps the first write error.
type sectorWriter struct {
	w   *bufio.Writer
	n   uint64
	err error
}

func (s *sectorWriter) write(p []byte) {
	if s.err != nil {
		return
	}
	var k int
	k, s.err = s.w.Write(p)
	s.n += uint64(k)
}

func (s *sectorWriter) sector() uint32 { return uint32(s.n / sectorSize) }

// pad fills the current sector with zeros.
func (s *sectorWriter) pad() {
	if r := s.n % sectorSize; r != 0 {
		s.write(make([]byte, sectorSize-r))
	}
}

func (s *sectorWriter) padTo(off uint64) {
	if off > s.n {
		s.write(make([]byte, off-s.n))
	}
}

// marker writes a metadata marker: numSectors, a zero size and the type.
func (s *sectorWriter) marker(numSectors uint64, typ uint32) {
	b := make([]byte, sectorSize)
	binary.LittleEndian.PutUint64(b, numSectors)
	binary.LittleEndian.PutUint32(b[12:], typ)
	s.write(b)
}

func u32s(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

var zeroGrain [grainBytes]byte
