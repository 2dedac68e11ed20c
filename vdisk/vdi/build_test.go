package vdi

import (
	"bytes"
	"math/rand"
)

// spec describes a VDI image for build, a generator written from
// VirtualBox's VDICore.h layout. Zero values are VirtualBox's defaults.
type spec struct {
	version   uint32 // 0: 1.1
	imageType uint32 // 0: normal (dynamic)
	blockSize uint32 // 0: 1 MiB
	extra     uint32 // block extra data, filled with 0xEE
	diskSize  uint64 // 0: len(data)
	blocks    uint32 // 0: as many as the disk size needs
	cbHeader  uint32 // 0: 1.1+ (0x190)
	align     int64  // alignment of the block map and the data; 0: 512
	// kinds says how each block is stored: 'F' free, 'Z' zero, 'S' stored
	// (its bytes from data). Nil: stored where data is not all zeros.
	kinds   []byte
	data    []byte // virtual content
	shuffle int64  // stores the blocks in a random order with this seed
	text    string // 0: VirtualBox's pre-header text

	create, modify, linkage, parentMod UUID
}

func (s *spec) defaults() {
	if s.version == 0 {
		s.version = 0x00010001
	}
	if s.imageType == 0 {
		s.imageType = typeNormal
	}
	if s.blockSize == 0 {
		s.blockSize = 1 << 20
	}
	if s.diskSize == 0 {
		s.diskSize = uint64(len(s.data))
	}
	if s.blocks == 0 {
		s.blocks = uint32((s.diskSize + uint64(s.blockSize) - 1) / uint64(s.blockSize))
	}
	if s.cbHeader == 0 {
		s.cbHeader = v1PlusHeaderSize
	}
	if s.align == 0 {
		s.align = 512
	}
	if s.text == "" {
		s.text = "<<< Oracle VM VirtualBox Disk Image >>>\n"
	}
	if s.create.IsZero() {
		s.create = UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	}
	if s.modify.IsZero() {
		s.modify = UUID{0xa1, 0xa2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	}
	if s.kinds == nil {
		s.kinds = make([]byte, s.blocks)
		for b := range s.kinds {
			s.kinds[b] = 'F'
			if !allZero(s.block(b)) {
				s.kinds[b] = 'S'
			}
		}
	}
}

// block is the virtual content of block b, short or empty past the data.
func (s *spec) block(b int) []byte {
	start := min(len(s.data), b*int(s.blockSize))
	end := min(len(s.data), start+int(s.blockSize))
	return s.data[start:end]
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// build writes the image s describes.
func build(s spec) []byte {
	s.defaults()
	var offBlocks, offData int64
	if s.version == v0Version {
		offBlocks = preHeaderSize + v0HeaderSize
		offData = offBlocks + 4*int64(s.blocks)
	} else {
		offBlocks = alignUp(preHeaderSize+int64(max(s.cbHeader, v1HeaderSize)), s.align)
		offData = alignUp(offBlocks+4*int64(s.blocks), s.align)
	}
	// Stored blocks, in file order.
	var order []int
	for b, k := range s.kinds {
		if k == 'S' {
			order = append(order, b)
		}
	}
	if s.shuffle != 0 {
		rand.New(rand.NewSource(s.shuffle)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	stride := int64(s.blockSize) + int64(s.extra)
	img := make([]byte, offData+int64(len(order))*stride)
	copy(img, s.text)
	le.PutUint32(img[signatureOff:], signature)
	le.PutUint32(img[versionOff:], s.version)
	h := img[preHeaderSize:]
	if s.version == v0Version {
		le.PutUint32(h[0x00:], s.imageType)
		le.PutUint64(h[0x118:], s.diskSize)
		le.PutUint32(h[0x120:], s.blockSize)
		le.PutUint32(h[0x124:], s.blocks)
		le.PutUint32(h[0x128:], uint32(len(order)))
		copy(h[0x12c:], s.create[:])
		copy(h[0x13c:], s.modify[:])
		copy(h[0x14c:], s.linkage[:])
	} else {
		le.PutUint32(h[0x00:], s.cbHeader)
		le.PutUint32(h[0x04:], s.imageType)
		copy(h[0x0c:], "built by the vdi package's tests")
		le.PutUint32(h[0x10c:], uint32(offBlocks))
		le.PutUint32(h[0x110:], uint32(offData))
		le.PutUint32(h[0x120:], sectorSize)
		le.PutUint64(h[0x128:], s.diskSize)
		le.PutUint32(h[0x130:], s.blockSize)
		le.PutUint32(h[0x134:], s.extra)
		le.PutUint32(h[0x138:], s.blocks)
		le.PutUint32(h[0x13c:], uint32(len(order)))
		copy(h[0x140:], s.create[:])
		copy(h[0x150:], s.modify[:])
		copy(h[0x160:], s.linkage[:])
		copy(h[0x170:], s.parentMod[:])
		if s.cbHeader >= v1PlusHeaderSize {
			le.PutUint32(h[0x18c:], sectorSize)
		}
	}
	for b := range int(s.blocks) {
		e := uint32(blockFree)
		if b < len(s.kinds) && s.kinds[b] == 'Z' {
			e = blockZero
		}
		le.PutUint32(img[offBlocks+4*int64(b):], e)
	}
	for i, b := range order {
		le.PutUint32(img[offBlocks+4*int64(b):], uint32(i))
		at := offData + int64(i)*stride
		for j := range int64(s.extra) {
			img[at+j] = 0xEE
		}
		copy(img[at+int64(s.extra):], s.block(b))
	}
	return img
}

var zeros = make([]byte, 1<<20)

// allZero compares whole chunks, not bytes one by one, which the race
// detector would make slow on the test's megabytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
