package vmdk

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/internal/readat"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// Options configure Open.
type Options struct {
	// Name is how errors and warnings name the image (the archive member
	// path).
	Name string
	// Resolve returns an extent file named by a text descriptor, looked
	// up among the sibling archive members. It is never called with an
	// absolute name (Unix, UNC or drive letter) or one with a ".." path
	// element. Without it, only single-file disks open.
	Resolve func(name string) (io.ReaderAt, int64, error)
	// AllowParent opens delta disks (a descriptor with a parent file name
	// or a parentCID) as children: Parent returns their reference, and Map
	// returns Hole exactly where the parent shows through. Without it a
	// delta is refused with blockmap.ErrUnsupported, since its own bytes
	// are only part of a disk.
	AllowParent bool
}

// Image is an opened VMDK disk: one sparse file or the extents a
// descriptor lists, laid end to end.
type Image struct {
	name     string
	size     int64
	format   string
	warnings []string
	exts     []extent
	cid      string
	parent   *blockmap.Parent // nil unless a delta opened with AllowParent
}

var _ blockmap.Mapper = (*Image)(nil)

type extentKind uint8

const (
	extZero extentKind = iota
	extFlat
	extSparse
	extSESparse
)

// extent is one piece of the virtual disk, [start, end) in virtual bytes.
type extent struct {
	start, end int64
	kind       extentKind
	src        io.ReaderAt // flat
	phys       int64       // flat: byte offset of start in src
	sp         *sparse
	dec        *grainDecoder
	se         *seSparse
}

// Detect reports whether the member starts like a VMDK: a sparse header
// (KDMV, or the older COWD) or a text descriptor.
func Detect(r io.ReaderAt, size int64) bool {
	if size < 4 {
		return false
	}
	var b [64]byte
	n, _ := r.ReadAt(b[:min(size, int64(len(b)))], 0)
	p := b[:n]
	return bytes.HasPrefix(p, magicKDMV) || bytes.HasPrefix(p, magicCOWD) || looksLikeDescriptor(p)
}

// Open parses the member's headers and tables; r covers exactly the
// member and size is its length.
func Open(r io.ReaderAt, size int64, opts Options) (*Image, error) {
	name := opts.Name
	if name == "" {
		name = "image"
	}
	if size < 4 {
		return nil, fmt.Errorf("vmdk: %s: %d bytes is too small for a VMDK: %w", name, size, blockmap.ErrCorrupt)
	}
	var first [sectorSize]byte
	if err := readPadded(r, size, first[:], 0); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the header: %w", name, err)
	}
	switch {
	case bytes.HasPrefix(first[:], magicKDMV):
		return openMonolithic(r, size, first[:], opts, name)
	case bytes.HasPrefix(first[:], magicCOWD):
		return nil, fmt.Errorf("vmdk: %s: a VMDK3 (COWD) sparse file has no descriptor; it is one extent of a disk, open its descriptor instead: %w",
			name, blockmap.ErrUnsupported)
	}
	if size > maxDescriptor {
		return nil, fmt.Errorf("vmdk: %s: not a VMDK: no sparse header magic, and %d bytes is too large for a descriptor (at most %d): %w",
			name, size, maxDescriptor, blockmap.ErrCorrupt)
	}
	text := make([]byte, size)
	if err := readat.Full(r, text, 0); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the descriptor: %w", name, err)
	}
	return openDescriptor(descriptorText(text), opts, name)
}

// openMonolithic opens a sparse file holding its own descriptor: a
// monolithicSparse or streamOptimized disk.
func openMonolithic(r io.ReaderAt, size int64, first []byte, opts Options, name string) (*Image, error) {
	lead := parseKDMV(first)
	if lead.capacity == 0 && lead.descOffset != 0 {
		// qemu reads such a file's embedded descriptor as a descriptor
		// file whose extents live elsewhere.
		raw, err := readEmbedded(r, size, lead, name)
		if err != nil {
			return nil, err
		}
		return openDescriptor(raw, opts, name)
	}
	if lead.descOffset == 0 {
		return nil, fmt.Errorf("vmdk: %s: sparse file has no embedded descriptor; it is one extent of a split disk, open its descriptor instead: %w",
			name, blockmap.ErrUnsupported)
	}
	raw, err := readEmbedded(r, size, lead, name)
	if err != nil {
		return nil, err
	}
	d, err := parseDescriptor(raw, name, false)
	if err != nil {
		return nil, err
	}
	if err := d.checkParent(name, opts); err != nil {
		return nil, err
	}
	h, atEnd, err := readSparseHeader(r, size, first, name)
	if err != nil {
		return nil, err
	}
	sp, err := newSparse(r, size, h, name)
	if err != nil {
		return nil, err
	}
	im := &Image{name: name, size: sp.size, cid: d.cid}
	if d.isDelta() {
		im.parent = d.parentRef(name)
	}
	kind := "monolithicSparse"
	if sp.compressed {
		kind = "streamOptimized"
	}
	im.format = fmt.Sprintf("vmdk %s v%d", kind, h.version)
	if atEnd {
		im.format += " (GD at end)"
	}
	if d.createType != "" && !strings.EqualFold(d.createType, kind) {
		im.warn("embedded descriptor says createType %q, but the file is laid out as %s", d.createType, kind)
	}
	im.sparseWarnings(h, "")
	if sp.size > 0 {
		im.exts = []extent{{start: 0, end: sp.size, kind: extSparse, sp: sp, dec: &grainDecoder{sp: sp}}}
	}
	return im, nil
}

// readEmbedded returns the embedded descriptor's text, bounded by the
// header's descriptorSize and by maxDescriptor.
func readEmbedded(r io.ReaderAt, size int64, h header, name string) ([]byte, error) {
	if h.descOffset >= uint64(size+sectorSize-1)/sectorSize {
		return nil, fmt.Errorf("vmdk: %s: embedded descriptor at sector %d lies past the end (%d bytes): %w",
			name, h.descOffset, size, blockmap.ErrCorrupt)
	}
	at := int64(h.descOffset) * sectorSize
	n := min(int64(min(h.descSize, maxDescriptor/sectorSize))*sectorSize, size-at)
	raw := make([]byte, n)
	if err := readat.Full(r, raw, at); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the embedded descriptor at offset %d: %w", name, at, err)
	}
	return descriptorText(raw), nil
}

// sparseWarnings records the header's non-fatal findings; ext names the
// extent inside a descriptor-based disk ("" for a monolithic file).
func (im *Image) sparseWarnings(h header, ext string) {
	where := ""
	if ext != "" {
		where = fmt.Sprintf(" (extent %q)", ext)
	}
	if h.unclean {
		im.warn("uncleanShutdown is set%s: the disk was not closed cleanly", where)
	}
	if !h.cowd {
		if unknown := h.flags &^ knownFlags; unknown != 0 {
			im.warn("unknown header flags %#x%s", unknown, where)
		}
		if h.flags&flagMarkers != 0 && !h.compressed() {
			im.warn("grain-marker flag without compression%s; grains are read uncompressed, as qemu does", where)
		}
		if h.flags&flagCompressed != 0 && !h.compressed() {
			im.warn("compressed flag set but compressAlgorithm is 0%s; grains are read uncompressed, as qemu does", where)
		}
	}
}

func (im *Image) warn(format string, args ...any) {
	im.warnings = append(im.warnings, fmt.Sprintf("vmdk: %s: ", im.name)+fmt.Sprintf(format, args...))
}

// Size is the virtual disk size in bytes.
func (im *Image) Size() int64 { return im.size }

// Format describes the disk, e.g. "vmdk streamOptimized v3 (GD at end)".
func (im *Image) Format() string { return im.format }

// Warnings returns the non-fatal findings of Open.
func (im *Image) Warnings() []string { return im.warnings }

// Map returns the run holding virtual byte off.
func (im *Image) Map(off int64) (blockmap.Run, error) {
	if off < 0 || off >= im.size {
		return blockmap.Run{}, fmt.Errorf("vmdk: %s: offset %d outside the disk (%d bytes)", im.name, off, im.size)
	}
	// The first extent whose end lies past off; extents are sorted and
	// contiguous, so it holds off.
	lo, hi := 0, len(im.exts)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if im.exts[mid].end > off {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	e := &im.exts[lo]
	switch e.kind {
	case extZero:
		return blockmap.Run{Off: e.start, Len: e.end - e.start, Kind: blockmap.Zero}, nil
	case extFlat:
		return blockmap.Run{Off: e.start, Len: e.end - e.start, Kind: blockmap.Stored, Src: e.src, Phys: e.phys}, nil
	case extSESparse:
		r, err := e.se.mapAt(off - e.start)
		if err != nil {
			return blockmap.Run{}, err
		}
		r.Off += e.start
		return r, nil
	}
	r, err := e.sp.mapAt(off-e.start, e.dec, e.start)
	if err != nil {
		return blockmap.Run{}, err
	}
	r.Off += e.start
	return r, nil
}
