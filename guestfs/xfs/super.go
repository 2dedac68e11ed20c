package xfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

const sbMagic = 0x58465342 // "XFSB"

// versionnum bits (the v4 feature word; v5 keeps it but uses the
// features_* words for anything new).
const (
	verAttr     = 0x0010
	verNlink    = 0x0020
	verQuota    = 0x0040
	verAlign    = 0x0080
	verDalign   = 0x0100
	verShared   = 0x0200
	verLogV2    = 0x0400
	verSector   = 0x0800
	verExtFlg   = 0x1000
	verDirV2    = 0x2000
	verBorg     = 0x4000 // ASCII case-insensitive names
	verMoreBits = 0x8000
	verKnown    = verAttr | verNlink | verQuota | verAlign | verDalign | verShared | verLogV2 |
		verSector | verExtFlg | verDirV2 | verBorg | verMoreBits
)

// features2 bits (v4; v5 requires some of them).
const (
	f2LazySBCount = 0x0002
	f2Attr2       = 0x0008
	f2Parent      = 0x0010
	f2ProjID32    = 0x0080
	f2CRC         = 0x0100
	f2Ftype       = 0x0200
	f2Known       = f2LazySBCount | f2Attr2 | f2Parent | f2ProjID32 | f2CRC | f2Ftype | 0x0001 /* reserved, set by old mkfs */
)

// v5 incompat feature bits.
const (
	incFtype       = 1 << 0
	incSpinodes    = 1 << 1
	incMetaUUID    = 1 << 2
	incBigtime     = 1 << 3
	incNeedsRepair = 1 << 4
	incNrext64     = 1 << 5
	incExchrange   = 1 << 6
	incParent      = 1 << 7
	incMetadir     = 1 << 8
	incZoned       = 1 << 9
	// incSupported is what this reader reads: the rest changes on-disk
	// structures it does not parse, so it refuses them as the kernel
	// refuses a feature it does not know.
	incSupported = incFtype | incSpinodes | incMetaUUID | incBigtime | incNeedsRepair | incNrext64 |
		incExchrange | incParent
)

var incNames = map[uint32]string{
	incFtype: "ftype", incSpinodes: "sparse inodes", incMetaUUID: "meta_uuid", incBigtime: "bigtime",
	incNeedsRepair: "needsrepair", incNrext64: "nrext64", incExchrange: "exchange-range", incParent: "parent pointers",
	incMetadir: "metadir", incZoned: "zoned",
}

// superblock holds the fields of the primary superblock the reader uses.
type superblock struct {
	blockSize   uint32
	blockLog    uint
	sectSize    uint32
	dblocks     uint64
	rblocks     uint64
	uuid        [16]byte
	metaUUID    [16]byte // the UUID stamped in v5 metadata headers
	logStart    uint64
	logBlocks   uint32
	rootIno     uint64
	agBlocks    uint32
	agCount     uint32
	agBlkLog    uint
	inodeSize   uint32
	inodeLog    uint
	inoPBLog    uint
	versionNum  uint16
	features2   uint32
	roCompat    uint32
	incompat    uint32
	logIncompat uint32
	dirBlkLog   uint
	label       string
	inProgress  uint8
	v5          bool
	ftype       bool
	bigtime     bool
	nrext64     bool
}

func (sb *superblock) dirBlkSize() int { return int(sb.blockSize) << sb.dirBlkLog }
func (sb *superblock) dirBlkFSBs() uint64 {
	return 1 << sb.dirBlkLog
}

// Probe reports whether the volume starts with an XFS superblock of
// version 4 or 5.
func Probe(r io.ReaderAt, size int64) bool {
	if size < 512 {
		return false
	}
	var b [104]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return false
	}
	v := binary.BigEndian.Uint16(b[100:]) & 0xf
	return binary.BigEndian.Uint32(b[0:]) == sbMagic && (v == 4 || v == 5)
}

// parseSuperblock checks the geometry as the kernel's verifier does: a
// hostile superblock must not make later arithmetic overflow or point
// reads outside the volume.
func parseSuperblock(b []byte, size int64) (*superblock, []string, error) {
	be := binary.BigEndian
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("xfs: superblock: %s: %w", fmt.Sprintf(format, a...), guestfs.ErrCorrupt)
	}
	if len(b) < 512 || be.Uint32(b[0:]) != sbMagic {
		return nil, nil, fmt.Errorf("xfs: no superblock magic: %w", guestfs.ErrNotFS)
	}
	sb := &superblock{
		blockSize:   be.Uint32(b[4:]),
		dblocks:     be.Uint64(b[8:]),
		rblocks:     be.Uint64(b[16:]),
		logStart:    be.Uint64(b[48:]),
		rootIno:     be.Uint64(b[56:]),
		agBlocks:    be.Uint32(b[84:]),
		agCount:     be.Uint32(b[88:]),
		logBlocks:   be.Uint32(b[96:]),
		versionNum:  be.Uint16(b[100:]),
		sectSize:    uint32(be.Uint16(b[102:])),
		inodeSize:   uint32(be.Uint16(b[104:])),
		inProgress:  b[126],
		dirBlkLog:   uint(b[192]),
		features2:   be.Uint32(b[200:]),
		roCompat:    be.Uint32(b[212:]),
		incompat:    be.Uint32(b[216:]),
		logIncompat: be.Uint32(b[220:]),
	}
	copy(sb.uuid[:], b[32:48])
	sb.metaUUID = sb.uuid
	sb.label = strings.TrimRight(string(b[108:120]), "\x00")
	var warns []string

	switch sb.versionNum & 0xf {
	case 4:
		if sb.versionNum&^0xf&^verKnown != 0 {
			return nil, nil, fmt.Errorf("xfs: unknown v4 feature bits %#x: %w", sb.versionNum&^0xf&^verKnown, guestfs.ErrUnsupported)
		}
		if sb.versionNum&verMoreBits != 0 {
			// Old kernels wrote features2 one word too far on; the
			// kernel merges both words, and so does the reader.
			sb.features2 |= be.Uint32(b[204:])
			if sb.features2&^f2Known != 0 {
				return nil, nil, fmt.Errorf("xfs: unknown v4 features2 bits %#x: %w", sb.features2&^f2Known, guestfs.ErrUnsupported)
			}
			sb.ftype = sb.features2&f2Ftype != 0
		} else {
			sb.features2 = 0
		}
		if sb.versionNum&verDirV2 == 0 {
			return nil, nil, fmt.Errorf("xfs: version 1 directories: %w", guestfs.ErrUnsupported)
		}
		sb.roCompat, sb.incompat, sb.logIncompat = 0, 0, 0
	case 5:
		sb.v5 = true
		if unk := sb.incompat &^ incSupported; unk != 0 {
			var names []string
			for bit := uint32(1); bit != 0; bit <<= 1 {
				if unk&bit != 0 {
					if n, ok := incNames[bit]; ok {
						names = append(names, n)
					} else {
						names = append(names, fmt.Sprintf("%#x", bit))
					}
				}
			}
			return nil, nil, fmt.Errorf("xfs: incompatible features %s: %w", strings.Join(names, ", "), guestfs.ErrUnsupported)
		}
		sb.ftype = sb.incompat&incFtype != 0
		sb.bigtime = sb.incompat&incBigtime != 0
		sb.nrext64 = sb.incompat&incNrext64 != 0
		if sb.incompat&incMetaUUID != 0 {
			copy(sb.metaUUID[:], b[248:264])
		}
		if sb.incompat&incNeedsRepair != 0 {
			warns = append(warns, "needsrepair is set: xfs_repair did not finish; read as it stands")
		}
		if unk := sb.roCompat &^ 0xf; unk != 0 {
			warns = append(warns, fmt.Sprintf("unknown read-only-compatible features %#x ignored", unk))
		}
	default:
		return nil, nil, fmt.Errorf("xfs: superblock version %d: %w", sb.versionNum&0xf, guestfs.ErrUnsupported)
	}
	if sb.versionNum&verBorg != 0 {
		return nil, nil, fmt.Errorf("xfs: ASCII case-insensitive names (ascii-ci): %w", guestfs.ErrUnsupported)
	}

	pow2 := func(v uint32) bool { return v != 0 && v&(v-1) == 0 }
	if !pow2(sb.blockSize) || sb.blockSize < 512 || sb.blockSize > 65536 || uint(b[120]) != uint(bits.TrailingZeros32(sb.blockSize)) {
		return nil, nil, corrupt("block size %d", sb.blockSize)
	}
	sb.blockLog = uint(b[120])
	if !pow2(sb.sectSize) || sb.sectSize < 512 || sb.sectSize > 32768 || sb.sectSize > sb.blockSize {
		return nil, nil, corrupt("sector size %d", sb.sectSize)
	}
	if !pow2(sb.inodeSize) || sb.inodeSize < 256 || sb.inodeSize > 2048 || sb.inodeSize > sb.blockSize ||
		uint(b[122]) != uint(bits.TrailingZeros32(sb.inodeSize)) {
		return nil, nil, corrupt("inode size %d", sb.inodeSize)
	}
	if sb.v5 && sb.inodeSize < 512 {
		return nil, nil, corrupt("inode size %d on a v5 filesystem", sb.inodeSize)
	}
	sb.inodeLog = uint(b[122])
	sb.inoPBLog = sb.blockLog - sb.inodeLog
	if uint(b[123]) != sb.inoPBLog || uint32(be.Uint16(b[106:])) != sb.blockSize/sb.inodeSize {
		return nil, nil, corrupt("inodes per block")
	}
	if sb.agCount == 0 || sb.agBlocks < 16 {
		return nil, nil, corrupt("%d allocation groups of %d blocks", sb.agCount, sb.agBlocks)
	}
	sb.agBlkLog = uint(b[124])
	if sb.agBlkLog > 31 || uint64(1)<<sb.agBlkLog < uint64(sb.agBlocks) || uint64(1)<<sb.agBlkLog >= 2*uint64(sb.agBlocks) {
		return nil, nil, corrupt("AG block log %d for %d blocks", sb.agBlkLog, sb.agBlocks)
	}
	if sb.agBlkLog+sb.inoPBLog > 32 {
		return nil, nil, corrupt("inode number layout")
	}
	if sb.dblocks == 0 || sb.dblocks > uint64(sb.agCount)*uint64(sb.agBlocks) ||
		sb.dblocks <= uint64(sb.agCount-1)*uint64(sb.agBlocks) {
		return nil, nil, corrupt("%d data blocks in %d AGs of %d", sb.dblocks, sb.agCount, sb.agBlocks)
	}
	if sb.dblocks > uint64(size)>>sb.blockLog {
		return nil, nil, corrupt("the volume is %d bytes, the filesystem %d blocks of %d", size, sb.dblocks, sb.blockSize)
	}
	if sb.dirBlkLog > 16-sb.blockLog {
		return nil, nil, corrupt("directory block log %d", sb.dirBlkLog)
	}
	if sb.rblocks != 0 {
		warns = append(warns, "a realtime volume is configured: files stored on it are not readable here")
	}
	if sb.inProgress != 0 {
		warns = append(warns, "mkfs did not finish (sb_inprogress)")
	}
	if sb.logIncompat != 0 {
		warns = append(warns, fmt.Sprintf("log-incompatible features %#x: the log holds changes not yet written in place", sb.logIncompat))
	}
	return sb, warns, nil
}

// uuidString formats a UUID as blkid prints it.
func uuidString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
