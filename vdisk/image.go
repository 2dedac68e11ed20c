package vdisk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/ovfmount/ovfmount/route"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
	"github.com/ovfmount/ovfmount/vdisk/qcow2"
	"github.com/ovfmount/ovfmount/vdisk/vdi"
	"github.com/ovfmount/ovfmount/vdisk/vhd"
	"github.com/ovfmount/ovfmount/vdisk/vhdx"
	"github.com/ovfmount/ovfmount/vdisk/vmdk"
)

// Image is a decoded disk.
type Image interface {
	// ReadAt reads virtual bytes. It is safe for concurrent use.
	io.ReaderAt
	// ReadAtContext is ReadAt that stops waiting when ctx ends (the kernel
	// interrupted the FUSE read), returning ctx.Err(). ctx also reaches the
	// reads of the image's sources that are a ContextReaderAt.
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
	// Size is the virtual disk size in bytes.
	Size() int64
	// Extent returns the longest run of data, or of zeros, that contains
	// off: the allocation map, one run at a time.
	Extent(off int64) (Extent, error)
	// SeekData and SeekHole answer lseek's SEEK_DATA and SEEK_HOLE: the
	// first offset at or after off holding data (ok=false: none before
	// the end), and the first reading as zeros (the end counts as one).
	SeekData(off int64) (next int64, ok bool, err error)
	SeekHole(off int64) (int64, error)
	// SeekHoleBefore is SeekHole for a caller that needs to know only up to
	// limit: it returns limit when no hole starts before it, without
	// walking the map past it (a disk's data can be a million runs long).
	SeekHoleBefore(off, limit int64) (int64, error)
	// Allocated is the number of bytes that hold data (for st_blocks). It
	// walks the allocation map once and remembers the result.
	Allocated() (int64, error)
	// Format describes the image, e.g. "vmdk streamOptimized v3".
	Format() string
	// Warnings lists what the format tolerated when it was opened.
	Warnings() []string
	// Segments describes [off, off+n) as zero and stored pieces when no
	// part of it needs decoding, so that a caller can serve the bytes
	// without copying them.
	Segments(off int64, n int) ([]Segment, bool)
	// Damaged returns nil, or the error (wrapping ErrCorrupt, naming the
	// disk and the unit) that damaged the image: a compressed unit whose
	// head a read was served from, before the unit's checks ran (its
	// source's bytes are proven, or the format has no checksum), failed
	// its whole decode. From then on every read fails with that error.
	Damaged() error
	// Layers lists the images the view reads: the image itself, and for a
	// child (Options.Parents) its parents, nearest first.
	Layers() []Layer
	// Provenance returns the run of the view that holds off, and the
	// layer that supplies it: what `ovfmount map` prints.
	Provenance(off int64) (Provenance, error)
}

// ContextReaderAt is a source whose reads may wait, and give up when their
// context ends: a member read on a strict-verification mount waits until
// the member is verified. When a source given to Open (or found by
// Options.Resolve) is one, the image's reads pass their context to it.
type ContextReaderAt = route.ContextReaderAt

// Extent is a run of virtual bytes that all hold data, or all read as
// zeros without being stored.
type Extent struct {
	Off, Len int64
	Data     bool
}

// Format is a disk image format, as recognised by its magic bytes.
type Format int

const (
	Unknown Format = iota
	VMDK
	VHD
	VHDX
	QCOW2
	VDI
	Raw
)

func (f Format) String() string {
	return [...]string{"unknown", "vmdk", "vhd", "vhdx", "qcow2", "vdi", "raw"}[f]
}

var (
	// ErrCorrupt: the image's structures are invalid (see blockmap).
	ErrCorrupt = blockmap.ErrCorrupt
	// ErrUnsupported: the image needs something an archive cannot give,
	// such as a parent disk or a backing file, or a feature not decoded.
	ErrUnsupported = blockmap.ErrUnsupported
	// ErrNotDisk: no disk image format recognised the bytes.
	ErrNotDisk = errors.New("not a disk image")
)

// Detect recognises a disk image format by its magic bytes. It reads only
// the first and last sectors.
func Detect(r io.ReaderAt, size int64) Format {
	switch {
	case vdi.Detect(r, size):
		return VDI
	case vhdx.Detect(r, size):
		return VHDX
	case qcow2.Detect(r, size):
		return QCOW2
	case vmdk.Detect(r, size):
		return VMDK
	case vhd.Detect(r, size):
		return VHD
	}
	return Unknown
}

// Options configure Open.
type Options struct {
	// Name is how errors and logs name the image (the member path).
	Name string
	// Resolve finds a file a VMDK descriptor names, among the sibling
	// members of the archive. Host paths are never opened.
	Resolve func(name string) (io.ReaderAt, int64, error)
	// Cache holds decoded units; images of one mount share it. Nil means
	// a cache of DefaultCacheSize shared by every image without one.
	Cache *Cache
	// Raw opens r as a raw disk when no format matches, instead of
	// failing with ErrNotDisk. Use it for files a descriptor says are
	// disks. Like qemu, a raw disk is the file padded with zeros to a
	// whole number of 512-byte sectors.
	Raw bool
	// Parents lists the files that may be the parent a child image (a
	// delta, an overlay, a differencing disk) names: the package's own
	// files, matched by the names the child gives (see blockmap.Parent),
	// never a host path. A view of a child reads through its whole chain.
	// Nil refuses children, as the mount's --disk-chain=off does.
	Parents func(child string, ref *blockmap.Parent) ([]Source, error)
	// OnDamage, when set, is called once, with the error Damaged returns,
	// when the image becomes damaged, so that the mount can log it and
	// mark the file.
	OnDamage func(err error)
}

// Open decodes the image of size bytes that r reads.
func Open(r io.ReaderAt, size int64, opts Options) (Image, error) {
	m, err := openMapper(r, size, opts)
	if err != nil {
		return nil, err
	}
	if opts.Parents != nil {
		if m, err = openChain(m, opts); err != nil {
			return nil, err
		}
	}
	c := opts.Cache
	if c == nil {
		c = defaultCache()
	}
	im := newImage(m, c)
	im.name, im.onDamage = opts.Name, opts.OnDamage
	return im, nil
}

// formatMapper is what every format package's image provides.
type formatMapper interface {
	blockmap.Mapper
	Format() string
	Warnings() []string
}

func openMapper(r io.ReaderAt, size int64, opts Options) (formatMapper, error) {
	switch Detect(r, size) {
	case VHDX:
		return vhdx.Open(r, size, vhdx.Options{Name: opts.Name, AllowParent: opts.Parents != nil})
	case QCOW2:
		return qcow2.Open(r, size, qcow2.Options{Name: opts.Name, AllowParent: opts.Parents != nil})
	case VMDK:
		return vmdk.Open(r, size, vmdk.Options{Name: opts.Name, Resolve: opts.Resolve, AllowParent: opts.Parents != nil})
	case VHD:
		return vhd.Open(r, size, vhd.Options{Name: opts.Name, AllowParent: opts.Parents != nil})
	case VDI:
		return vdi.Open(r, size, vdi.Options{Name: opts.Name, AllowParent: opts.Parents != nil})
	}
	if opts.Raw {
		return newRawMapper(r, size), nil
	}
	return nil, fmt.Errorf("vdisk: %s: %w", opts.Name, ErrNotDisk)
}

// rawSector is the unit qemu sizes a raw file in.
const rawSector = 512

// rawMapper is a raw disk: the file is the disk, padded with zeros to a
// whole sector. qemu sees a raw file's size rounded up to 512 bytes
// (qemu-img info gives 512 for a 4-byte file, 1024 for 513 or 1000 bytes),
// `qemu-img convert -O raw` writes the file's bytes and then zeros to that
// size, and qemu-img map calls the padding zeros, not data. The view is
// what convert writes, so it does the same.
type rawMapper struct {
	r      io.ReaderAt
	stored int64 // the file's bytes
	size   int64 // stored rounded up to a sector
	warn   []string
}

func newRawMapper(r io.ReaderAt, stored int64) *rawMapper {
	m := &rawMapper{r: r, stored: stored, size: stored}
	if rem := stored % rawSector; rem > 0 && stored <= math.MaxInt64-rawSector {
		m.size = stored + rawSector - rem
		m.warn = []string{fmt.Sprintf("raw: the file is %d bytes, not a whole number of %d-byte sectors; the disk is %d bytes, the last %d zeros, as qemu reads it",
			stored, rawSector, m.size, m.size-stored)}
	}
	return m
}

func (m *rawMapper) Size() int64        { return m.size }
func (m *rawMapper) Format() string     { return "raw" }
func (m *rawMapper) Warnings() []string { return m.warn }
func (m *rawMapper) Map(off int64) (blockmap.Run, error) {
	if off < m.stored {
		return blockmap.Run{Off: 0, Len: m.stored, Kind: blockmap.Stored, Src: m.r, Phys: 0}, nil
	}
	return blockmap.Run{Off: m.stored, Len: m.size - m.stored, Kind: blockmap.Zero}, nil
}
