package qcow2

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

var _ blockmap.Mapper = (*Image)(nil)

// Options configure Open.
type Options struct {
	// Name is how errors and warnings name the image (the archive member
	// path).
	Name string
	// AllowParent opens an overlay (an image with a backing file) as a
	// child whose unallocated clusters are its parent's (see
	// blockmap.Parent). Without it, an overlay is refused.
	AllowParent bool
}

// Image is an open QCOW2 image. It is safe for concurrent use.
type Image struct {
	name     string
	src      io.ReaderAt // the member, bounded to [0, fileSize)
	fileSize int64
	size     int64 // virtual size served (qemu rounds down to 512)

	version     uint32
	clusterBits uint
	clusterSize int64
	l2Bits      uint // log2 of the entries in one L2 table
	extL2       bool
	zstd        bool
	format      string

	// Compressed cluster descriptors: host offset in the low csizeShift
	// bits, then the count of additional 512-byte sectors.
	csizeShift uint
	csizeMask  uint64

	l1 []uint64 // the active L1 entries that cover the virtual size

	// Metadata no data cluster or L2 table may overlap.
	l1Start, l1End   int64
	refStart, refEnd int64

	l2  *l2Cache
	dec *decoder

	warnings []string
	parent   *blockmap.Parent // nil for an image with no backing file
}

// Detect reports whether the bytes start with the QCOW magic. Version 1
// images match too, so that Open can refuse them by name.
func Detect(r io.ReaderAt, size int64) bool {
	if size < 4 {
		return false
	}
	var b [4]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return false
	}
	return binary.BigEndian.Uint32(b[:]) == magic
}

// Open parses the header, checks every table location against the member
// and loads the active L1 table. r must cover exactly the image (one
// archive member) of size bytes; nothing outside [0, size) is ever read.
func Open(r io.ReaderAt, size int64, opts Options) (*Image, error) {
	name := opts.Name
	if name == "" {
		name = "qcow2 image"
	}
	if size < 0 {
		return nil, errCorrupt(name, "negative image size %d", size)
	}
	src := io.NewSectionReader(r, 0, size)
	h, err := readHeader(src, size, name, opts.AllowParent)
	if err != nil {
		return nil, err
	}
	img := &Image{
		name:        name,
		src:         src,
		fileSize:    size,
		version:     h.version,
		clusterBits: uint(h.clusterBits),
		clusterSize: int64(1) << h.clusterBits,
		extL2:       h.incompat&incExtL2 != 0,
		zstd:        h.compression == compZstd,
		csizeShift:  62 - (uint(h.clusterBits) - 8),
		csizeMask:   uint64(1)<<(h.clusterBits-8) - 1,
	}
	entryBits := uint(3)
	if img.extL2 {
		entryBits = 4
	}
	img.l2Bits = img.clusterBits - entryBits
	img.dec = &decoder{img: img}
	img.l2 = newL2Cache(img.clusterSize)
	img.format = formatName(img)
	if h.backing != "" {
		// qemu checks nothing of a backing file but that it opens: QCOW2
		// has no identity of its parent to compare.
		img.parent = &blockmap.Parent{Names: []string{h.backing}, Format: h.backingFmt}
	}

	if err := img.checkHeaderTables(h); err != nil {
		return nil, err
	}
	if err := img.loadL1(h); err != nil {
		return nil, err
	}
	img.addWarnings(h)
	return img, nil
}

func formatName(img *Image) string {
	if img.version == 2 {
		return "qcow2 v2"
	}
	s := "qcow2 v3 (zlib"
	if img.zstd {
		s = "qcow2 v3 (zstd"
	}
	if img.extL2 {
		s += ", extended L2"
	}
	return s + ")"
}

// checkHeaderTables applies qemu's open-time checks to the refcount and
// snapshot tables. Neither is read, but qemu refuses an image whose
// tables are misplaced, and the refcount table's extent is remembered so
// that no data cluster may claim it.
func (img *Image) checkHeaderTables(h *header) error {
	name, cs := img.name, uint64(img.clusterSize)
	if h.size > math.MaxInt64 {
		return errCorrupt(name, "virtual size %d is too large", h.size)
	}
	if h.refClusters == 0 {
		return errCorrupt(name, "no refcount table")
	}
	if uint64(h.refClusters) > maxRefTableBytes>>img.clusterBits {
		return errCorrupt(name, "refcount table of %d clusters exceeds qemu's %d MiB limit", h.refClusters, maxRefTableBytes>>20)
	}
	refLen := uint64(h.refClusters) * cs
	if h.refOff%cs != 0 || h.refOff > math.MaxInt64-refLen {
		return errCorrupt(name, "refcount table offset %#x is invalid (unaligned or too large)", h.refOff)
	}
	img.refStart, img.refEnd = int64(h.refOff), int64(h.refOff+refLen)

	if h.nbSnapshots > maxSnapshots {
		return errCorrupt(name, "%d snapshots exceed qemu's limit of %d", h.nbSnapshots, maxSnapshots)
	}
	snapLen := uint64(h.nbSnapshots) * snapshotHdrLen
	if h.snapOff%cs != 0 || h.snapOff > math.MaxInt64-snapLen {
		return errCorrupt(name, "snapshot table offset %#x is invalid (unaligned or too large)", h.snapOff)
	}
	return nil
}

// loadL1 checks that the active L1 table covers the virtual size and lies
// inside the member before allocating it, then reads the entries that
// cover the virtual size (the rest are never consulted).
func (img *Image) loadL1(h *header) error {
	name := img.name
	if uint64(h.l1Size) > maxL1Bytes/8 {
		return errCorrupt(name, "L1 table of %d entries exceeds qemu's %d MiB limit", h.l1Size, maxL1Bytes>>20)
	}
	shift := img.clusterBits + img.l2Bits // bytes covered by one L1 entry
	need := h.size >> shift
	if h.size&(uint64(1)<<shift-1) != 0 {
		need++
	}
	if uint64(h.l1Size) < need {
		return errCorrupt(name, "L1 table of %d entries covers %d bytes, less than the virtual size %d",
			h.l1Size, uint64(h.l1Size)<<shift, h.size)
	}
	img.size = int64(h.size) &^ 511
	if h.l1Size == 0 {
		return nil
	}
	l1Len := uint64(h.l1Size) * 8
	if h.l1Off%uint64(img.clusterSize) != 0 {
		return errCorrupt(name, "L1 table offset %#x is not aligned to the cluster size", h.l1Off)
	}
	if h.l1Off > uint64(img.fileSize) || l1Len > uint64(img.fileSize)-h.l1Off {
		return errCorrupt(name, "L1 table at %d (%d entries) runs past the end of the file (%d)", h.l1Off, h.l1Size, img.fileSize)
	}
	img.l1Start, img.l1End = int64(h.l1Off), int64(h.l1Off+l1Len)
	if h.l1Off < uint64(img.clusterSize) {
		return errCorrupt(name, "L1 table at %d overlaps the header cluster", h.l1Off)
	}
	buf := make([]byte, need*8)
	if _, err := img.src.ReadAt(buf, int64(h.l1Off)); err != nil {
		return fmt.Errorf("qcow2: %s: reading the L1 table at %d: %w", name, h.l1Off, err)
	}
	img.l1 = make([]uint64, need)
	for i := range img.l1 {
		img.l1[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	return nil
}

func (img *Image) addWarnings(h *header) {
	if h.incompat&incDirty != 0 {
		img.warnings = append(img.warnings, fmt.Sprintf("qcow2: %s: dirty bit set (not closed cleanly); refcounts may be stale, data is read as mapped", img.name))
	}
	if h.incompat&incCorrupt != 0 {
		img.warnings = append(img.warnings, fmt.Sprintf("qcow2: %s: corrupt bit set; qemu found inconsistent metadata in this image, reading on", img.name))
	}
	if h.version == 3 && h.headerLen%8 != 0 {
		img.warnings = append(img.warnings, fmt.Sprintf("qcow2: %s: header_length %d is not a multiple of 8", img.name, h.headerLen))
	}
	if h.size%512 != 0 {
		img.warnings = append(img.warnings, fmt.Sprintf("qcow2: %s: virtual size %d is not a multiple of 512; serving %d bytes as qemu does", img.name, h.size, img.size))
	}
	if h.nbSnapshots > 0 {
		img.warnings = append(img.warnings, fmt.Sprintf("qcow2: %s: %d internal snapshot(s) ignored; only the active state is served", img.name, h.nbSnapshots))
	}
}

// Size is the virtual disk size in bytes.
func (img *Image) Size() int64 { return img.size }

// Format describes the image, e.g. "qcow2 v3 (zstd, extended L2)".
func (img *Image) Format() string { return img.format }

// Warnings lists the non-fatal findings of Open.
func (img *Image) Warnings() []string { return slices.Clone(img.warnings) }

// Parent returns the backing file the image reads through, or nil.
func (img *Image) Parent() *blockmap.Parent { return img.parent }
