package qcow2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// magic is "QFI\xfb".
const magic = 0x514649fb

const (
	v2HeaderLen  = 72  // version 2 has no header_length field
	v3MinHeader  = 104 // header_length below this is corrupt
	compTypeByte = 104 // compression_type, present when header_length > 104

	minClusterBits = 9  // 512-byte clusters: the spec's minimum
	maxClusterBits = 21 // 2 MiB: qemu's implementation limit
	minExtL2Bits   = 14 // qemu refuses subclusters smaller than 512 bytes

	maxL1Bytes       = 32 << 20 // qemu's QCOW_MAX_L1_SIZE
	maxRefTableBytes = 8 << 20  // qemu's QCOW_MAX_REFTABLE_SIZE
	maxSnapshots     = 65536    // qemu's QCOW_MAX_SNAPSHOTS
	snapshotHdrLen   = 40       // fixed part of a snapshot table entry
	maxBackingName   = 1023     // qemu's bound on backing_file_size
	maxRefcountOrder = 6        // 64-bit refcounts
)

// Incompatible feature bits (header offset 72).
const (
	incDirty       = 1 << 0
	incCorrupt     = 1 << 1
	incDataFile    = 1 << 2
	incCompression = 1 << 3
	incExtL2       = 1 << 4
	incKnown       = incDirty | incCorrupt | incDataFile | incCompression | incExtL2
)

// Header extension types.
const (
	extEnd          = 0x00000000
	extFeatureNames = 0x6803f857
	extCrypto       = 0x0537be77
	extDataFile     = 0x44415441
	extBackingFmt   = 0xe2792aca
)

const (
	cryptNone = 0
	cryptAES  = 1
	cryptLUKS = 2

	compZlib = 0
	compZstd = 1
)

// header holds the fields of the fixed header that reading needs, already
// checked against the rules qemu applies when it opens an image.
type header struct {
	version       uint32
	backingOff    uint64
	backingLen    uint32
	clusterBits   uint32
	size          uint64
	cryptMethod   uint32
	l1Size        uint32
	l1Off         uint64
	refOff        uint64
	refClusters   uint32
	nbSnapshots   uint32
	snapOff       uint64
	incompat      uint64
	refcountOrder uint32
	headerLen     uint32
	compression   uint8

	// From the header extensions.
	featureNames map[uint8]string // incompatible bit -> name
	dataFile     string
	hasDataFile  bool
	hasCrypto    bool
	backingFmt   string

	backing string // the backing file's name, read when a parent is allowed
}

func errCorrupt(name, format string, a ...any) error {
	return fmt.Errorf("qcow2: %s: %s: %w", name, fmt.Sprintf(format, a...), blockmap.ErrCorrupt)
}

func errUnsupported(name, format string, a ...any) error {
	return fmt.Errorf("qcow2: %s: %s: %w", name, fmt.Sprintf(format, a...), blockmap.ErrUnsupported)
}

// readHeader reads and validates the fixed header and its extensions. The
// order of the checks follows qemu's, so that an image qemu refuses for
// one reason is refused here for the same reason.
func readHeader(r io.ReaderAt, size int64, name string, allowParent bool) (*header, error) {
	if size < 8 {
		return nil, errCorrupt(name, "file of %d bytes is too short for a qcow2 header", size)
	}
	var buf [compTypeByte + 1]byte
	n, err := r.ReadAt(buf[:min(int64(len(buf)), size)], 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("qcow2: %s: reading the header: %w", name, err)
	}
	if n < 8 {
		return nil, errCorrupt(name, "file of %d bytes is too short for a qcow2 header", size)
	}
	be := binary.BigEndian
	if m := be.Uint32(buf[0:]); m != magic {
		return nil, errCorrupt(name, "bad magic %#08x, not a qcow2 image", m)
	}
	h := &header{version: be.Uint32(buf[4:])}
	switch h.version {
	case 2, 3:
	case 1:
		return nil, errUnsupported(name, "old qcow (version 1) image")
	default:
		return nil, errUnsupported(name, "qcow2 version %d", h.version)
	}
	need := v2HeaderLen
	if h.version == 3 {
		need = v3MinHeader
	}
	if n < need {
		return nil, errCorrupt(name, "header truncated: version %d needs %d bytes, the file has %d", h.version, need, size)
	}
	h.backingOff = be.Uint64(buf[8:])
	h.backingLen = be.Uint32(buf[16:])
	h.clusterBits = be.Uint32(buf[20:])
	h.size = be.Uint64(buf[24:])
	h.cryptMethod = be.Uint32(buf[32:])
	h.l1Size = be.Uint32(buf[36:])
	h.l1Off = be.Uint64(buf[40:])
	h.refOff = be.Uint64(buf[48:])
	h.refClusters = be.Uint32(buf[56:])
	h.nbSnapshots = be.Uint32(buf[60:])
	h.snapOff = be.Uint64(buf[64:])
	if h.version == 2 {
		h.refcountOrder = 4
		h.headerLen = v2HeaderLen
	} else {
		h.incompat = be.Uint64(buf[72:])
		h.refcountOrder = be.Uint32(buf[96:])
		h.headerLen = be.Uint32(buf[100:])
	}

	if h.clusterBits < minClusterBits {
		return nil, errCorrupt(name, "cluster_bits %d is below the minimum of %d", h.clusterBits, minClusterBits)
	}
	if h.clusterBits > maxClusterBits {
		return nil, errUnsupported(name, "cluster_bits %d: clusters over 2 MiB", h.clusterBits)
	}
	cs := uint64(1) << h.clusterBits
	if h.version == 3 {
		if h.headerLen < v3MinHeader {
			return nil, errCorrupt(name, "header_length %d is below the minimum of %d", h.headerLen, v3MinHeader)
		}
		if uint64(h.headerLen) > cs {
			return nil, errCorrupt(name, "header_length %d exceeds the cluster size %d", h.headerLen, cs)
		}
		if h.headerLen > compTypeByte {
			if n <= compTypeByte {
				return nil, errCorrupt(name, "header truncated: header_length is %d, the file has %d bytes", h.headerLen, size)
			}
			h.compression = buf[compTypeByte]
		}
	}
	if h.backingOff > cs {
		return nil, errCorrupt(name, "backing file name offset %d is outside the first cluster", h.backingOff)
	}

	// The extensions end where the backing file name starts, if any.
	areaEnd := cs
	if h.backingOff != 0 {
		areaEnd = h.backingOff
	}
	if err := h.readExtensions(r, size, name, uint64(h.headerLen), areaEnd); err != nil {
		return nil, err
	}
	if err := h.checkFeatures(name); err != nil {
		return nil, err
	}
	// qemu treats an empty name as no backing file at all.
	if h.backingOff != 0 && h.backingLen != 0 {
		b, err := h.readBacking(r, size, name)
		if err != nil {
			return nil, err
		}
		if !allowParent {
			return nil, errUnsupported(name, "backing file %s (an overlay is read through its parent only when chains are on)", blockmap.Quote(b))
		}
		h.backing = b
	}
	return h, nil
}

// readExtensions walks the extension area [start, end) of the first
// cluster. Bytes past the end of the file read as zeros, as they do for
// qemu: only the bytes present are read, and a header past them is a zero
// type that ends the list.
func (h *header) readExtensions(r io.ReaderAt, size int64, name string, start, end uint64) error {
	if start >= end || int64(start) >= size {
		return nil
	}
	area := make([]byte, min(end, uint64(size))-start) // at most one cluster
	if _, err := r.ReadAt(area, int64(start)); err != nil && err != io.EOF {
		return fmt.Errorf("qcow2: %s: reading the header extensions at %d: %w", name, start, err)
	}
	avail := uint64(len(area))
	areaLen := end - start
	for off := uint64(0); off < areaLen; {
		if areaLen-off < 8 {
			return errCorrupt(name, "header extension at %d is cut off by the end of the extension area (%d)", start+off, end)
		}
		var hdr [8]byte
		if off < avail {
			copy(hdr[:], area[off:])
		}
		typ := binary.BigEndian.Uint32(hdr[0:])
		ln := uint64(binary.BigEndian.Uint32(hdr[4:]))
		off += 8
		if ln > areaLen-off {
			return errCorrupt(name, "header extension %#08x at %d: length %d runs past the extension area (%d)", typ, start+off-8, ln, end)
		}
		// Data past the end of the file would read as zeros; only error
		// text is taken from it, so the part present is enough.
		var data []byte
		if off < avail {
			data = area[off:min(off+ln, avail)]
		}
		switch typ {
		case extEnd:
			return nil
		case extFeatureNames:
			h.readFeatureNames(data)
		case extCrypto:
			h.hasCrypto = true
		case extDataFile:
			h.hasDataFile = true
			h.dataFile = string(data)
		case extBackingFmt:
			h.backingFmt = string(data)
		}
		// Padding to 8 can only run past the area for the last
		// extension; the loop condition then ends the walk.
		off += (ln + 7) &^ 7
	}
	return nil
}

// readFeatureNames keeps the names of incompatible features, so that an
// unknown feature can be refused by its name rather than a bit number.
func (h *header) readFeatureNames(data []byte) {
	const entryLen = 48
	for i := 0; i+entryLen <= len(data); i += entryLen {
		e := data[i : i+entryLen]
		if e[0] != 0 || e[1] >= 64 { // only incompatible features matter
			continue
		}
		nm := e[2:]
		if j := bytes.IndexByte(nm, 0); j >= 0 {
			nm = nm[:j]
		}
		if h.featureNames == nil {
			h.featureNames = map[uint8]string{}
		}
		h.featureNames[e[1]] = string(nm)
	}
}

// checkFeatures refuses what cannot be read: unknown incompatible
// features, encryption, external data files, and header values qemu
// rejects.
func (h *header) checkFeatures(name string) error {
	if unknown := h.incompat &^ incKnown; unknown != 0 {
		var list []string
		for b := unknown; b != 0; b &= b - 1 {
			bit := uint8(bits.TrailingZeros64(b))
			if nm, ok := h.featureNames[bit]; ok && nm != "" {
				list = append(list, fmt.Sprintf("bit %d %s", bit, blockmap.Quote(nm)))
			} else {
				list = append(list, fmt.Sprintf("bit %d", bit))
			}
		}
		return errUnsupported(name, "unknown incompatible feature (%s)", strings.Join(list, ", "))
	}
	switch h.cryptMethod {
	case cryptNone:
		if h.hasCrypto {
			return errCorrupt(name, "encryption header extension in an image that is not LUKS-encrypted")
		}
	case cryptAES:
		return errUnsupported(name, "encrypted image (AES)")
	case cryptLUKS:
		return errUnsupported(name, "encrypted image (LUKS)")
	default:
		return errUnsupported(name, "encrypted image (method %d)", h.cryptMethod)
	}
	if h.incompat&incDataFile != 0 {
		if h.hasDataFile {
			return errUnsupported(name, "external data file %s", blockmap.Quote(h.dataFile))
		}
		return errUnsupported(name, "external data file (name not recorded)")
	}
	if h.refcountOrder > maxRefcountOrder {
		return errCorrupt(name, "refcount_order %d exceeds %d", h.refcountOrder, maxRefcountOrder)
	}
	switch h.compression {
	case compZlib:
		if h.incompat&incCompression != 0 {
			return errCorrupt(name, "compression type feature bit set for zlib")
		}
	case compZstd:
		if h.incompat&incCompression == 0 {
			return errCorrupt(name, "zstd compression type without the compression type feature bit")
		}
	default:
		return errUnsupported(name, "compression type %d", h.compression)
	}
	if h.incompat&incExtL2 != 0 && h.clusterBits < minExtL2Bits {
		return errUnsupported(name, "extended L2 entries with %d-byte clusters (subclusters below 512 bytes)", uint64(1)<<h.clusterBits)
	}
	return nil
}

// readBacking reads the backing file's name. It is only a name: the
// caller looks for it among the package's own files, because following a
// path from a hostile image would expose the host's files.
func (h *header) readBacking(r io.ReaderAt, size int64, name string) (string, error) {
	ln := uint64(h.backingLen)
	cs := uint64(1) << h.clusterBits
	if ln > maxBackingName || h.backingOff+ln > cs {
		return "", errCorrupt(name, "backing file name of %d bytes at %d is too long (at most %d bytes, inside the first cluster)", ln, h.backingOff, maxBackingName)
	}
	if h.backingOff+ln > uint64(size) {
		return "", errCorrupt(name, "backing file name at %d (%d bytes) runs past the end of the file (%d)", h.backingOff, ln, size)
	}
	buf := make([]byte, ln)
	if _, err := r.ReadAt(buf, int64(h.backingOff)); err != nil {
		return "", fmt.Errorf("qcow2: %s: reading the backing file name at %d: %w", name, h.backingOff, err)
	}
	return string(buf), nil
}
