package vdi

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

var (
	_ blockmap.Mapper = (*Image)(nil)
	_ blockmap.Child  = (*Image)(nil)
)

// ErrWrongParent is what a differencing image's Parent().Check returns,
// wrapped with both UUIDs, for a candidate that is not the image it was
// written against. It is not corruption: a resolver trying the package's
// VDI files one by one expects it for all but one.
var ErrWrongParent = errors.New("not the parent image")

// Options configure Open.
type Options struct {
	// Name is how errors and warnings name the image (the archive member
	// path).
	Name string
	// AllowParent opens a differencing image as a child (see Parent).
	// Without it, a differencing image is refused with ErrUnsupported.
	AllowParent bool
}

// Image is an opened VDI. It is immutable after Open, so Map is safe for
// concurrent use without locks.
type Image struct {
	r     io.ReaderAt
	name  string
	size  int64 // of the image file
	vsize int64
	h     *header

	shift     uint  // log2(block size)
	blockSize int64 // bytes of a block's data
	stride    int64 // bytes a block takes in the file: extra data, then data
	entries   []byte
	runs      []uint32 // the first block of each run (see scan)
	parent    *blockmap.Parent

	warnings []string
}

// Detect reports whether r holds a VDI pre-header: the signature at 0x40,
// after a text such as "<<< Oracle VM VirtualBox Disk Image >>>". Neither
// VirtualBox nor qemu reads the text, but every writer puts one there, and
// the signature alone is four bytes a raw disk could hold by chance.
func Detect(r io.ReaderAt, size int64) bool {
	if size < preHeaderSize {
		return false
	}
	var b [preHeaderSize]byte
	if n, _ := r.ReadAt(b[:], 0); n != len(b) {
		return false
	}
	return strings.HasPrefix(string(b[:]), "<<< ") && le.Uint32(b[signatureOff:]) == signature
}

// Open reads the header and the block map. r must cover exactly the image,
// which is size bytes long.
func Open(r io.ReaderAt, size int64, opts Options) (*Image, error) {
	img, err := open(r, size, opts)
	if err != nil {
		return nil, fmt.Errorf("vdi: %s: %w", opts.Name, err)
	}
	return img, nil
}

func open(r io.ReaderAt, size int64, opts Options) (*Image, error) {
	if size < 0 {
		return nil, fmt.Errorf("negative image size %d: %w", size, blockmap.ErrCorrupt)
	}
	h, warn, err := readHeader(r, size)
	if err != nil {
		return nil, err
	}
	img := &Image{r: r, name: opts.Name, size: size, h: h, warnings: warn}

	if h.imageType == typeDiff {
		if h.linkage.IsZero() {
			return nil, fmt.Errorf("differencing image with a null parent UUID, so no image can be its parent: %w", blockmap.ErrCorrupt)
		}
		if !opts.AllowParent {
			return nil, fmt.Errorf("differencing image: its unallocated blocks live in the parent image with creation UUID {%s} (modification UUID {%s} when this image was made), which is not read: %w",
				h.linkage, h.parentMod, blockmap.ErrUnsupported)
		}
		img.parent = &blockmap.Parent{Check: img.checkParent}
	} else if !h.linkage.IsZero() {
		// VirtualBox 3.0 and 3.1 wrote base images with a parent UUID
		// (a VDCopy bug); VirtualBox treats them as bases and clears it.
		img.warnings = append(img.warnings, fmt.Sprintf("vdi: a base image with the parent UUID {%s}, which is ignored, as VirtualBox does", h.linkage))
	}

	// qemu rounds an odd disk size up to a whole sector, VirtualBox down.
	// Rounding up serves every byte the header counts; the few bytes after
	// them come from the last block, as qemu-img convert writes them.
	vsize := h.diskSize
	if rem := vsize % sectorSize; rem != 0 {
		vsize += sectorSize - rem
		img.warnings = append(img.warnings, fmt.Sprintf("vdi: the disk size %d is not a whole number of sectors; the disk is %d bytes, as qemu reads it (VirtualBox shows %d)",
			h.diskSize, vsize, h.diskSize-rem))
	}
	// check bounded the size by blocks*blockSize < 2^63, and the rounding
	// stays under it since both are multiples of 512.
	img.vsize = int64(vsize)
	img.blockSize = int64(h.blockSize)
	img.stride = img.blockSize + int64(h.blockExtra)
	for img.blockSize>>img.shift > 1 {
		img.shift++
	}

	// Only the entries of blocks the disk covers are read; VirtualBox
	// reads them all, but the rest are never used.
	n := (img.vsize + img.blockSize - 1) >> img.shift
	if end := h.offBlocks + 4*n; end > size {
		return nil, fmt.Errorf("the block map of %d entries at %d runs past the end of the image (%d bytes): %w", n, h.offBlocks, size, blockmap.ErrCorrupt)
	}
	// The check above bounds this allocation by the image's size.
	img.entries = make([]byte, 4*n)
	if err := readFull(r, img.entries, h.offBlocks, "the block map"); err != nil {
		return nil, err
	}
	img.scan()
	return img, nil
}

// Size is the virtual disk size in bytes.
func (img *Image) Size() int64 { return img.vsize }

// Format describes the image, e.g. "vdi dynamic (1 MiB blocks)".
func (img *Image) Format() string {
	kind := map[uint32]string{typeNormal: "dynamic", typeFixed: "fixed", typeDiff: "differencing"}[img.h.imageType]
	s := "vdi " + kind + " (" + byteSize(img.blockSize) + " blocks"
	if img.h.version == v0Version {
		s += ", version 0.2"
	}
	return s + ")"
}

// Warnings returns what Open found wrong but could read past.
func (img *Image) Warnings() []string { return append([]string(nil), img.warnings...) }

// CreateUUID is the image's creation UUID (uuidCreate), by which
// VirtualBox knows the image and its children name it.
func (img *Image) CreateUUID() UUID { return img.h.create }

// ModifyUUID is the UUID VirtualBox gives the image each time it is
// written (uuidModify).
func (img *Image) ModifyUUID() UUID { return img.h.modify }

// ParentUUID is a differencing image's uuidLinkage, the creation UUID of
// its parent; null for a base image.
func (img *Image) ParentUUID() UUID {
	if img.h.imageType != typeDiff {
		return UUID{}
	}
	return img.h.linkage
}

// ParentModifyUUID is a differencing image's uuidParentModify, the
// parent's modification UUID when the child was created; null for a base
// image and for version 0.2, which has no such field. Check does not
// compare it: see the package documentation.
func (img *Image) ParentModifyUUID() UUID {
	if img.h.imageType != typeDiff {
		return UUID{}
	}
	return img.h.parentMod
}

// Parent describes the parent of a differencing image opened with
// AllowParent, and is nil otherwise. A VDI names no parent file, only the
// parent's creation UUID, so Names is empty: a resolver finds the parent
// among the package's VDI files by that UUID (CreateUUID against
// ParentUUID), and Check confirms it.
func (img *Image) Parent() *blockmap.Parent { return img.parent }

// checkParent accepts only the VDI image whose creation UUID is the
// child's uuidLinkage, the one check VirtualBox makes (see doc.go).
func (img *Image) checkParent(m blockmap.Mapper) error {
	p, ok := m.(*Image)
	if !ok {
		return fmt.Errorf("vdi: %s: the parent candidate is a %T, not a VDI image; a VDI differencing image is checked only against VDI parents (it wants creation UUID {%s}): %w",
			img.name, m, img.h.linkage, ErrWrongParent)
	}
	if p.h.create != img.h.linkage {
		return fmt.Errorf("vdi: %s: written against the parent with creation UUID {%s}, but %s has creation UUID {%s}: %w",
			img.name, img.h.linkage, blockmap.Quote(p.name), p.h.create, ErrWrongParent)
	}
	return nil
}

// byteSize prints a power of two in the largest binary unit that keeps it
// whole.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// UUID is a UUID as VDI stores it: the layout of Microsoft's GUID and of
// VirtualBox's RTUUID, whose first three fields are little-endian.
type UUID [16]byte

// IsZero reports whether u is the null UUID.
func (u UUID) IsZero() bool { return u == UUID{} }

// String formats u as VirtualBox prints it (VBoxManage showmediuminfo).
func (u UUID) String() string {
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15])
}
