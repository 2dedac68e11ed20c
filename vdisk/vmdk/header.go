package vmdk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/internal/readat"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const (
	sectorSize = 512

	// gdAtEnd in the header's gdOffset means the grain directory location
	// is only known once the stream has been written, so the authoritative
	// header is the footer copy near the end of the file.
	gdAtEnd = ^uint64(0)

	// qemu's limits, so that anything qemu refuses is refused here too.
	maxGTEsPerGT    = 512
	maxGrainSectors = 0x200000
	maxGDEntries    = 32 << 20

	// maxCapacity (in sectors, 8 PiB) keeps every byte offset far from
	// int64 overflow; VMware's own limit is 62 TiB.
	maxCapacity = 1 << 44

	// maxCompressedGrain bounds the buffer the read path allocates per
	// compressed unit. Every streamOptimized writer uses 64 KiB grains, and
	// the shared decoders are sized for units of at most 2 MiB.
	maxCompressedGrain = 2 << 20

	// cowdGTEsPerGT is fixed by the VMDK3 (COWD) format.
	cowdGTEsPerGT = 4096

	flagNewlineTest = 1 << 0
	flagRedundantGD = 1 << 1
	flagZeroGrain   = 1 << 2
	flagCompressed  = 1 << 16
	flagMarkers     = 1 << 17
	knownFlags      = flagNewlineTest | flagRedundantGD | flagZeroGrain | flagCompressed | flagMarkers

	compressNone    = 0
	compressDeflate = 1

	// Metadata marker types of a stream: a marker with a zero size field
	// is followed by numSectors sectors of the given kind.
	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3
)

var (
	magicKDMV   = []byte("KDMV")
	magicCOWD   = []byte("COWD")
	newlineTest = [4]byte{'\n', ' ', '\r', '\n'}
)

// header is a SparseExtentHeader (KDMV) or the parts of a VMDK3 (COWD)
// header that locate data, in one shape so one mapper serves both.
type header struct {
	cowd        bool
	version     uint32
	flags       uint32
	capacity    uint64 // sectors
	grainSize   uint64 // sectors
	descOffset  uint64 // sectors
	descSize    uint64 // sectors
	numGTEs     uint64
	gdOffset    uint64 // sectors
	gdStored    uint64 // COWD only: directory entries the header declares
	overHead    uint64 // sectors
	unclean     bool
	newline     [4]byte
	compressAlg uint16
}

func (h *header) compressed() bool { return !h.cowd && h.compressAlg == compressDeflate }

// markers reports whether grains carry the 12-byte marker (LBA and size)
// rather than the legacy bare size. Like qemu, the flag only matters for
// compressed grains.
func (h *header) markers() bool { return h.compressed() && h.flags&flagMarkers != 0 }

// parseKDMV decodes a 512-byte SparseExtentHeader that begins with its magic.
func parseKDMV(b []byte) header {
	le := binary.LittleEndian
	h := header{
		version:     le.Uint32(b[4:]),
		flags:       le.Uint32(b[8:]),
		capacity:    le.Uint64(b[12:]),
		grainSize:   le.Uint64(b[20:]),
		descOffset:  le.Uint64(b[28:]),
		descSize:    le.Uint64(b[36:]),
		numGTEs:     uint64(le.Uint32(b[44:])),
		gdOffset:    le.Uint64(b[56:]),
		overHead:    le.Uint64(b[64:]),
		unclean:     b[72] != 0,
		compressAlg: le.Uint16(b[77:]),
	}
	copy(h.newline[:], b[73:77])
	return h
}

// parseCOWD decodes the fields of a VMDK3 header that qemu uses: capacity,
// grain size and the directory's place and length. Grain tables always
// hold 4096 entries and grains are never compressed.
func parseCOWD(b []byte) header {
	le := binary.LittleEndian
	return header{
		cowd:      true,
		version:   le.Uint32(b[4:]),
		flags:     le.Uint32(b[8:]),
		capacity:  uint64(le.Uint32(b[12:])),
		grainSize: uint64(le.Uint32(b[16:])),
		gdOffset:  uint64(le.Uint32(b[20:])),
		gdStored:  uint64(le.Uint32(b[24:])),
		numGTEs:   cowdGTEsPerGT,
	}
}

// readSparseHeader reads the header of a sparse member whose first sector
// is first, following the footer when the header defers to it. It returns
// the header that locates the data and whether it came from the footer.
func readSparseHeader(r io.ReaderAt, size int64, first []byte, name string) (header, bool, error) {
	if bytes.HasPrefix(first, magicCOWD) {
		return parseCOWD(first), false, nil
	}
	h := parseKDMV(first)
	if h.gdOffset != gdAtEnd {
		return h, false, nil
	}
	f, err := readFooter(r, size, name)
	if err != nil {
		return header{}, false, err
	}
	if f.gdOffset == gdAtEnd {
		return header{}, false, fmt.Errorf("vmdk: %s: the footer header also says the grain directory is at the end: %w", name, blockmap.ErrCorrupt)
	}
	// The footer is used wholesale, as qemu does, but the descriptor is
	// where the leading header put it.
	f.descOffset, f.descSize = h.descOffset, h.descSize
	return f, true, nil
}

// readFooter reads the three sectors that close a stream: the footer
// marker, the footer copy of the header and the end-of-stream marker. qemu
// places them against the member's length rounded up to a sector, reading
// zeros past the end, so this does too.
func readFooter(r io.ReaderAt, size int64, name string) (header, error) {
	end := (size + sectorSize - 1) / sectorSize * sectorSize
	at := end - 3*sectorSize
	if at < sectorSize {
		return header{}, fmt.Errorf("vmdk: %s: header says the grain directory is at the end, but %d bytes cannot hold a header and a footer: %w", name, size, blockmap.ErrCorrupt)
	}
	var b [3 * sectorSize]byte
	if err := readPadded(r, size, b[:], at); err != nil {
		return header{}, fmt.Errorf("vmdk: %s: reading the footer at offset %d: %w", name, at, err)
	}
	le := binary.LittleEndian
	marker, foot, eos := b[:sectorSize], b[sectorSize:2*sectorSize], b[2*sectorSize:]
	markerOK := le.Uint32(marker[8:]) == 0 && le.Uint32(marker[12:]) == markerFooter
	footOK := bytes.HasPrefix(foot, magicKDMV)
	eosOK := le.Uint64(eos) == 0 && le.Uint32(eos[8:]) == 0 && le.Uint32(eos[12:]) == markerEOS
	switch {
	case !markerOK && !(footOK && eosOK):
		// Nothing of the stream's closing sectors is where it belongs:
		// the file was cut short (an interrupted download or export),
		// which is what a user needs to hear, rather than which field
		// of which marker is wrong.
		ends := ""
		if size%sectorSize != 0 {
			ends = ", padded with zeros to a whole sector as qemu reads it"
		}
		return header{}, fmt.Errorf("vmdk: %s: truncated: a streamOptimized image whose grain directory is at the end must end with a footer marker, "+
			"the footer and an end-of-stream marker, but the last %d bytes (from offset %d; the file is %d bytes%s) hold %s: %w",
			name, len(b), at, size, ends, describeSectors(b[:]), blockmap.ErrCorrupt)
	case !markerOK:
		return header{}, fmt.Errorf("vmdk: %s: no footer marker at offset %d (size %d, type %d): %w",
			name, at, le.Uint32(marker[8:]), le.Uint32(marker[12:]), blockmap.ErrCorrupt)
	case !footOK:
		return header{}, fmt.Errorf("vmdk: %s: footer at offset %d has magic %q, want KDMV: %w", name, at+sectorSize, foot[:4], blockmap.ErrCorrupt)
	case !eosOK:
		return header{}, fmt.Errorf("vmdk: %s: no end-of-stream marker at offset %d: %w", name, at+2*sectorSize, blockmap.ErrCorrupt)
	}
	return parseKDMV(foot), nil
}

// describeSectors says what sectors of a stream hold, in order, merging
// neighbours alike: "grain or table data, then a footer marker, then a KDMV
// header". An end-of-stream marker is a sector of zeros, and reads as one.
func describeSectors(b []byte) string {
	var parts []string
	for off := 0; off+sectorSize <= len(b); off += sectorSize {
		d := describeSector(b[off : off+sectorSize])
		if len(parts) == 0 || parts[len(parts)-1] != d {
			parts = append(parts, d)
		}
	}
	return strings.Join(parts, ", then ")
}

func describeSector(s []byte) string {
	le := binary.LittleEndian
	typ := le.Uint32(s[12:])
	switch {
	case isZero(s):
		return "zeros"
	case bytes.HasPrefix(s, magicKDMV):
		return "a KDMV header"
	case le.Uint32(s[8:]) == 0 && typ >= markerGT && typ <= markerFooter && isZero(s[16:]):
		return "a " + markerName(typ) + " marker"
	}
	return "grain or table data"
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// check applies qemu's open-time checks and this package's bounds, and
// returns the number of grain directory entries the capacity needs.
func (h *header) check(name string, size int64) (uint64, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("vmdk: %s: "+format+": %w", append(append([]any{name}, args...), blockmap.ErrCorrupt)...)
	}
	unsupported := func(format string, args ...any) error {
		return fmt.Errorf("vmdk: %s: "+format+": %w", append(append([]any{name}, args...), blockmap.ErrUnsupported)...)
	}
	if !h.cowd {
		switch {
		case h.version == 0:
			return 0, corrupt("header version 0")
		case h.version > 3:
			return 0, unsupported("header version %d (versions 1 to 3 are known)", h.version)
		}
		if h.flags&flagNewlineTest != 0 && h.newline != newlineTest {
			return 0, corrupt("newline-detection bytes are %q, want %q: the file was transferred in text mode", h.newline[:], newlineTest[:])
		}
		if h.compressAlg != compressNone && h.compressAlg != compressDeflate {
			return 0, unsupported("compression algorithm %d", h.compressAlg)
		}
		if h.numGTEs == 0 || h.numGTEs > maxGTEsPerGT {
			return 0, corrupt("%d entries per grain table (1 to %d allowed)", h.numGTEs, maxGTEsPerGT)
		}
	}
	if h.grainSize == 0 || h.grainSize > maxGrainSectors || h.grainSize&(h.grainSize-1) != 0 {
		return 0, corrupt("grain size of %d sectors is not a power of two up to %d", h.grainSize, maxGrainSectors)
	}
	if h.compressed() && h.grainSize*sectorSize > maxCompressedGrain {
		return 0, unsupported("compressed grains of %d bytes (at most %d are decoded)", h.grainSize*sectorSize, maxCompressedGrain)
	}
	if h.capacity > maxCapacity {
		return 0, corrupt("capacity of %d sectors is beyond %d", h.capacity, uint64(maxCapacity))
	}
	span := h.numGTEs * h.grainSize
	entries := (h.capacity + span - 1) / span
	if h.cowd {
		if h.gdStored < entries {
			return 0, corrupt("grain directory holds %d entries, the capacity of %d sectors needs %d", h.gdStored, h.capacity, entries)
		}
	}
	if entries > maxGDEntries {
		return 0, corrupt("grain directory of %d entries is too large (at most %d)", entries, maxGDEntries)
	}
	sectors := uint64(size+sectorSize-1) / sectorSize
	if !h.cowd && sectors < h.overHead {
		return 0, corrupt("file truncated: %d bytes, but the header's overhead is %d sectors", size, h.overHead)
	}
	if entries == 0 {
		return 0, nil
	}
	if h.gdOffset == 0 {
		return 0, corrupt("grain directory at sector 0 overlaps the header")
	}
	if h.gdOffset > uint64(size)/sectorSize || h.gdOffset*sectorSize+entries*4 > uint64(size) {
		return 0, corrupt("grain directory at sector %d (%d entries) runs past the end (%d bytes)", h.gdOffset, entries, size)
	}
	return entries, nil
}

// readPadded reads [off, off+len(p)) of a member of the given size and
// reads zeros where that range passes the end.
func readPadded(r io.ReaderAt, size int64, p []byte, off int64) error {
	clear(p)
	if off >= size {
		return nil
	}
	n := int(min(int64(len(p)), size-off))
	return readat.Full(r, p[:n], off)
}
