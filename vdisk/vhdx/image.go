package vhdx

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/ovfmount/ovfmount/lru"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// Options configure Open.
type Options struct {
	// Name is how errors and warnings name the image (the archive member
	// path).
	Name string
	// AllowParent opens a differencing disk (HasParent) as a child whose
	// Parent says which image lies beneath it, instead of refusing it: the
	// caller (package vdisk) finds the parent among the package's own
	// files and reads through it. Off, a differencing disk is refused as
	// before, naming its parent.
	AllowParent bool
}

// Image is an open VHDX image. It is immutable after Open apart from the
// BAT page cache, so it is safe for concurrent use.
type Image struct {
	name       string
	size       int64 // virtual size
	blockSize  int64
	chunkRatio int64 // payload blocks per sector bitmap block
	blocks     int64 // payload blocks
	fixed      bool
	sector     int64 // logical sector size
	dataWrite  guid  // the active header's DataWriteGuid
	view       *view
	spans      spans
	bat        *bat
	warnings   []string

	// Differencing disks only (Options.AllowParent).
	child   bool
	parent  *blockmap.Parent
	bitmaps *lru.Cache[int64, []byte]
}

var (
	_ blockmap.Mapper = (*Image)(nil)
	_ blockmap.Child  = (*Image)(nil)
)

// Detect reports whether r starts with the VHDX file identifier.
func Detect(r io.ReaderAt, size int64) bool {
	var b [8]byte
	return size >= int64(len(b)) && readAt(r, size, b[:], 0) == nil && bytes.Equal(b[:], fileMagic)
}

// Open parses the headers, replays the log in memory if it is dirty, and
// reads the region table, the metadata and the BAT. r must hold exactly
// the image: size bytes.
func Open(r io.ReaderAt, size int64, opts Options) (*Image, error) {
	name := opts.Name
	var magic [8]byte
	if err := readAt(r, size, magic[:], 0); err != nil {
		return nil, readFail(name, "the file identifier", 0, err)
	}
	if !bytes.Equal(magic[:], fileMagic) {
		return nil, corrupt(name, "no \"vhdxfile\" identifier at offset 0")
	}
	h, warnings, err := activeHeader(r, size, name)
	if err != nil {
		return nil, err
	}
	if err := h.checkLogPlacement(name); err != nil {
		return nil, err
	}
	fixed := spans{{0, headerSectionEnd, "the header section"}}
	if h.logLength > 0 {
		fixed.add(span{int64(h.logOffset), int64(h.logOffset) + int64(h.logLength), "the log"})
	}

	v := &view{r: r, size: size, eff: size, ov: &overlay{}}
	if !h.logGUID.isZero() && h.logLength > 0 {
		rp, err := replayLog(r, size, h, name)
		if err != nil {
			return nil, err
		}
		if rp.ov != nil {
			v.ov = rp.ov
			v.eff = max(size, rp.ov.end(), rp.grow)
		}
		warnings = append(warnings, rp.note)
	}

	rt, w, err := readRegionTables(v, fixed, name)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, w...)
	p, w, err := readMetadata(v, rt.metadata, name, opts.AllowParent)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, w...)

	img := &Image{
		name:       name,
		size:       p.virtualSize,
		blockSize:  p.blockSize,
		chunkRatio: (1 << 23) * p.logicalSector / p.blockSize,
		fixed:      p.fixed,
		sector:     p.logicalSector,
		dataWrite:  h.dataWrite,
		view:       v,
		spans:      rt.spans,
		warnings:   warnings,
	}
	img.blocks = (img.size + img.blockSize - 1) / img.blockSize
	n := img.blocks + (img.blocks-1)/img.chunkRatio
	if p.parent != nil {
		img.child = true
		img.parent = img.newParent(p.parent)
		img.bitmaps = lru.New[int64, []byte](bitmapCacheBytes)
		// A child needs the sector bitmap entry of its last chunk too,
		// which the interleaving puts after all chunkRatio payload entries
		// of the chunk, full or not, as qemu counts them. ([MS-VHDX] 2.5
		// gives a count that ends the table right after the last payload
		// entry of a chunk that is not full, where the interleaving puts no
		// bitmap entry; BAT regions are whole MiB, so in practice both
		// fit, and a region too small for this count is refused below.)
		chunks := (img.blocks + img.chunkRatio - 1) / img.chunkRatio
		n = chunks * (img.chunkRatio + 1)
	}
	if 8*n > rt.bat.length {
		return nil, corrupt(name, "the BAT region (%d bytes) cannot hold the %d entries of a %d-byte disk of %d-byte blocks",
			rt.bat.length, n, img.size, img.blockSize)
	}
	if rt.bat.off+8*n > v.eff {
		return nil, corrupt(name, "the BAT (%d entries at %d) lies past the end of the file (%d bytes)", n, rt.bat.off, v.eff)
	}
	if img.bat, err = newBAT(img, rt.bat.off, n); err != nil {
		return nil, err
	}
	return img, nil
}

// Size is the virtual disk size in bytes.
func (img *Image) Size() int64 { return img.size }

// Format describes the image, e.g. "vhdx dynamic (32 MiB blocks)".
func (img *Image) Format() string {
	switch {
	case img.child:
		return fmt.Sprintf("vhdx differencing (%d MiB blocks)", img.blockSize/mib)
	case img.fixed:
		return "vhdx fixed"
	}
	return fmt.Sprintf("vhdx dynamic (%d MiB blocks)", img.blockSize/mib)
}

// Warnings returns the non-fatal findings of Open: a damaged header or
// region table copy, a replayed log.
func (img *Image) Warnings() []string { return slices.Clone(img.warnings) }
