package vhd

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/lru"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

var (
	_ blockmap.Mapper = (*Image)(nil)
	_ blockmap.Child  = (*Image)(nil)
)

// Options configure Open.
type Options struct {
	// Name is how errors and warnings name the image (the archive member
	// path).
	Name string
	// AllowParent opens a differencing disk (type 4) as a child whose
	// Parent says which image lies beneath it, instead of refusing it: the
	// caller (package vdisk) finds the parent among the package's own
	// files and reads through it. Off, a differencing disk is refused as
	// before, naming its parent.
	AllowParent bool
}

// Image is an opened VHD. It is immutable after Open, so Map is safe for
// concurrent use without locks.
type Image struct {
	r     io.ReaderAt
	name  string
	vsize int64
	fixed bool

	// Dynamic disks only.
	blockSize int64
	shift     uint // log2(blockSize)
	bitmap    int64
	bat       []byte    // big-endian sector numbers, one per block of the virtual disk
	holes     []holeRun // maximal runs of unallocated blocks, in order
	meta      []span    // metadata that block data must not overlap
	dataEnd   int64     // block data must end here: the footer at the end, or the end

	// Differencing disks only (Options.AllowParent): the sector bitmaps
	// decide, sector by sector, whether an allocated block or the parent
	// holds the data.
	differ  bool
	bitmaps *lru.Cache[int64, []byte]
	parent  *blockmap.Parent

	uniqueID [16]byte // the footer's Unique Id, which a child names as its parent

	warnings []string
}

// Detect reports whether r starts or ends with a VHD footer cookie,
// including the 511-byte footers of early Virtual PC.
func Detect(r io.ReaderAt, size int64) bool {
	var b [9]byte
	if size >= 8 {
		if n, _ := r.ReadAt(b[:8], 0); n == 8 && string(b[:8]) == cookieFooter {
			return true
		}
	}
	if size >= footerSize {
		if n, _ := r.ReadAt(b[:], size-footerSize); n == len(b) {
			return string(b[:8]) == cookieFooter || string(b[1:]) == cookieFooter
		}
	}
	return false
}

// Open reads the footer and, for a dynamic disk, its header and BAT. r must
// cover exactly the image, which is size bytes long.
func Open(r io.ReaderAt, size int64, opts Options) (*Image, error) {
	img, err := open(r, size, opts)
	if err != nil {
		return nil, fmt.Errorf("vhd: %s: %w", opts.Name, err)
	}
	return img, nil
}

func open(r io.ReaderAt, size int64, opts Options) (*Image, error) {
	name := opts.Name
	if size < 0 {
		return nil, fmt.Errorf("negative image size %d: %w", size, blockmap.ErrCorrupt)
	}
	tail, head, err := readFooters(r, size)
	if err != nil {
		return nil, err
	}
	f, warn, err := chooseFooter(tail, head)
	if err != nil {
		return nil, err
	}
	img := &Image{r: r, name: name, warnings: warn}
	copy(img.uniqueID[:], f.raw[68:84])
	if len(f.raw) == shortFooterSize {
		img.warnings = append(img.warnings, "vhd: the footer is an old 511-byte one, which qemu does not read")
	}
	switch t := f.diskType; t {
	case diskFixed, diskDynamic, diskDiffer:
	case 0:
		return nil, fmt.Errorf("disk type 0 (none): %w", blockmap.ErrUnsupported)
	case 1, 5, 6:
		return nil, fmt.Errorf("deprecated disk type %d: %w", t, blockmap.ErrUnsupported)
	default:
		return nil, fmt.Errorf("unknown disk type %d: %w", t, blockmap.ErrCorrupt)
	}
	if v := binary.BigEndian.Uint32(f.raw[12:]); v != formatVersion {
		img.warnings = append(img.warnings, fmt.Sprintf("vhd: the footer has format version %#08x, not %#08x", v, formatVersion))
	}

	if f.diskType == diskDiffer && !opts.AllowParent {
		h, _, err := readDynHeader(r, size, f.dataOffset)
		if err != nil {
			return nil, err
		}
		return nil, h.parentError(r, size)
	}

	vsize, warn, err := virtualSize(f)
	if err != nil {
		return nil, err
	}
	img.warnings = append(img.warnings, warn...)
	img.vsize = vsize

	if f.diskType == diskFixed {
		img.fixed = true
		if vsize > f.at {
			img.warnings = append(img.warnings, fmt.Sprintf(
				"vhd: the virtual size %d runs past the %d data bytes before the footer; the rest reads as the footer and then zeros, as in qemu",
				vsize, f.at))
		}
		return img, nil
	}
	img.differ = f.diskType == diskDiffer
	h, err := img.openDynamic(r, size, f, tail)
	if err != nil {
		return nil, err
	}
	if img.differ {
		img.openChild(r, size, h)
	}
	return img, nil
}

func (img *Image) openDynamic(r io.ReaderAt, size int64, f, tail *footer) (*dynHeader, error) {
	h, warn, err := readDynHeader(r, size, f.dataOffset)
	if err != nil {
		return nil, err
	}
	img.warnings = append(img.warnings, warn...)
	if err := h.checkBlocks(img.vsize, size); err != nil {
		return nil, err
	}
	img.blockSize = int64(h.blockSize)
	for img.blockSize>>img.shift > 1 {
		img.shift++
	}
	img.bitmap = h.bitmapSize()
	// The footer copy at 0 needs no entry: a block's data starts after
	// its bitmap, so at sector 1 at the earliest.
	img.meta = []span{
		{h.at, h.at + dynHeaderSize, "dynamic header"},
		{int64(h.batOffset), int64(h.batOffset) + 4*int64(h.maxEntries), "BAT"},
	}
	if img.differ {
		// A differencing disk reads the bitmap in front of each block,
		// which must then lie clear of the metadata too, the footer copy
		// at offset 0 included.
		img.meta = append([]span{{0, footerSize, "footer copy"}}, img.meta...)
	}
	img.dataEnd = size
	if tail != nil {
		img.dataEnd = tail.at
	}

	// checkBlocks bounded the whole table by the image, so this allocation
	// is at most size bytes.
	n := (img.vsize + img.blockSize - 1) >> img.shift
	img.bat = make([]byte, 4*n)
	if err := readFull(r, img.bat, int64(h.batOffset), "the BAT"); err != nil {
		return nil, err
	}
	img.scanBAT()
	return h, nil
}

// Size is the virtual disk size in bytes.
func (img *Image) Size() int64 { return img.vsize }

// Format describes the image, e.g. "vhd dynamic (2 MiB blocks)".
func (img *Image) Format() string {
	switch {
	case img.fixed:
		return "vhd fixed"
	case img.differ:
		return "vhd differencing (" + byteSize(img.blockSize) + " blocks)"
	}
	return "vhd dynamic (" + byteSize(img.blockSize) + " blocks)"
}

// Parent returns what a differencing disk opened with
// Options.AllowParent says about its parent, and nil for a fixed or
// dynamic disk, which stands alone.
func (img *Image) Parent() *blockmap.Parent { return img.parent }

// UniqueID returns the Unique Id of the footer, as stored: the identity a
// differencing disk records as its Parent Unique ID, and that its
// Parent.Check compares.
func (img *Image) UniqueID() [16]byte { return img.uniqueID }

// Warnings returns what Open found wrong but could read past.
func (img *Image) Warnings() []string { return append([]string(nil), img.warnings...) }

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
