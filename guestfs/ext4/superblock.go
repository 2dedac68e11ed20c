package ext4

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

const (
	superblockOffset = 1024
	superblockSize   = 1024
	magic            = 0xEF53
)

// Feature bits of the superblock (fs/ext4/ext4.h).
const (
	compatHasJournal = 0x4
	compatDirIndex   = 0x20

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatBtreeDir     = 0x4
	roCompatHugeFile     = 0x8
	roCompatGdtCsum      = 0x10
	roCompatMetadataCsum = 0x400
)

// incompatKnown are the incompatible features this reader understands
// well enough to read correctly. The rest make Open refuse the volume, as
// the kernel refuses to mount it: reading on would show wrong contents.
const incompatKnown = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents |
	incompat64bit | incompatMMP | incompatFlexBG | incompatEAInode | incompatCsumSeed |
	incompatLargeDir | incompatInlineData | incompatEncrypt | incompatCasefold

var incompatNames = map[uint32]string{
	incompatCompression: "compression", incompatFiletype: "filetype", incompatRecover: "needs_recovery",
	incompatJournalDev: "journal_dev", incompatMetaBG: "meta_bg", incompatExtents: "extent",
	incompat64bit: "64bit", incompatMMP: "mmp", incompatFlexBG: "flex_bg", incompatEAInode: "ea_inode",
	incompatDirData: "dirdata", incompatCsumSeed: "metadata_csum_seed", incompatLargeDir: "large_dir",
	incompatInlineData: "inline_data", incompatEncrypt: "encrypt", incompatCasefold: "casefold",
}

// superblock holds the fields of struct ext4_super_block the reader uses.
type superblock struct {
	inodesCount     uint32
	blocksCount     uint64
	firstDataBlock  uint32
	logBlockSize    uint32
	blocksPerGroup  uint32
	inodesPerGroup  uint32
	state           uint16
	creatorOS       uint32
	revLevel        uint32
	firstIno        uint32
	inodeSize       uint16
	compat          uint32
	incompat        uint32
	roCompat        uint32
	uuid            [16]byte
	volumeName      [16]byte
	hashSeed        [4]uint32
	defHashVersion  uint8
	descSize        uint16
	firstMetaBG     uint32
	flags           uint32
	checksumType    uint8
	checksumSeed    uint32
	backupBGs       [2]uint32
	storedChecksum  uint32
	computedCsumOK  bool
	hasMetadataCsum bool
}

const (
	flagSignedHash   = 0x1
	flagUnsignedHash = 0x2
	flagTestFS       = 0x4
)

func parseSuperblock(b []byte) (*superblock, error) {
	le := binary.LittleEndian
	if len(b) < superblockSize || le.Uint16(b[0x38:]) != magic {
		return nil, fmt.Errorf("ext4: no superblock magic: %w", guestfs.ErrNotFS)
	}
	sb := &superblock{
		inodesCount:    le.Uint32(b[0x0:]),
		blocksCount:    uint64(le.Uint32(b[0x4:])),
		firstDataBlock: le.Uint32(b[0x14:]),
		logBlockSize:   le.Uint32(b[0x18:]),
		blocksPerGroup: le.Uint32(b[0x20:]),
		inodesPerGroup: le.Uint32(b[0x28:]),
		state:          le.Uint16(b[0x3A:]),
		creatorOS:      le.Uint32(b[0x48:]),
		revLevel:       le.Uint32(b[0x4C:]),
		firstIno:       11,
		inodeSize:      128,
		compat:         le.Uint32(b[0x5C:]),
		incompat:       le.Uint32(b[0x60:]),
		roCompat:       le.Uint32(b[0x64:]),
		defHashVersion: b[0xFC],
		descSize:       le.Uint16(b[0xFE:]),
		firstMetaBG:    le.Uint32(b[0x104:]),
		flags:          le.Uint32(b[0x160:]),
		checksumType:   b[0x175],
		checksumSeed:   le.Uint32(b[0x270:]),
		storedChecksum: le.Uint32(b[0x3FC:]),
	}
	copy(sb.uuid[:], b[0x68:0x78])
	copy(sb.volumeName[:], b[0x78:0x88])
	for i := range sb.hashSeed {
		sb.hashSeed[i] = le.Uint32(b[0xEC+4*i:])
	}
	sb.backupBGs[0], sb.backupBGs[1] = le.Uint32(b[0x24C:]), le.Uint32(b[0x250:])
	if sb.revLevel >= 1 {
		sb.firstIno = le.Uint32(b[0x54:])
		sb.inodeSize = le.Uint16(b[0x58:])
	}
	if sb.incompat&incompat64bit != 0 {
		sb.blocksCount |= uint64(le.Uint32(b[0x150:])) << 32
	}
	sb.hasMetadataCsum = sb.roCompat&roCompatMetadataCsum != 0
	if sb.hasMetadataCsum {
		sb.computedCsumOK = crc32c(^uint32(0), b[:0x3FC]) == sb.storedChecksum
	}
	return sb, nil
}

// blockSize is 1024 << s_log_block_size; check validates the shift first.
func (sb *superblock) blockSize() int64 { return 1024 << sb.logBlockSize }

// check refuses what the kernel refuses to mount and what would make the
// geometry unbounded: every later bound (group count, inode table
// location, block numbers) is derived from these fields.
func (sb *superblock) check(size int64) error {
	if sb.hasMetadataCsum {
		if sb.checksumType != 1 {
			return fmt.Errorf("ext4: superblock checksum type %d: %w", sb.checksumType, guestfs.ErrCorrupt)
		}
		if !sb.computedCsumOK {
			return fmt.Errorf("ext4: superblock checksum mismatch: %w", guestfs.ErrCorrupt)
		}
	}
	if bad := sb.incompat &^ incompatKnown; bad != 0 {
		return fmt.Errorf("ext4: incompatible features %s: %w", featureNames(bad), guestfs.ErrUnsupported)
	}
	if sb.logBlockSize > 6 {
		return fmt.Errorf("ext4: block size 2^%d KiB: %w", sb.logBlockSize, guestfs.ErrCorrupt)
	}
	bs := sb.blockSize()
	is := int64(sb.inodeSize)
	if is < 128 || is > bs || is&(is-1) != 0 {
		return fmt.Errorf("ext4: inode size %d: %w", is, guestfs.ErrCorrupt)
	}
	if sb.incompat&incompat64bit != 0 {
		ds := int64(sb.descSize)
		if ds < 64 || ds > 1024 || ds&(ds-1) != 0 {
			return fmt.Errorf("ext4: group descriptor size %d: %w", ds, guestfs.ErrCorrupt)
		}
	} else {
		sb.descSize = 32
	}
	if sb.blocksPerGroup == 0 || sb.inodesPerGroup == 0 || int64(sb.inodesPerGroup) > 8*bs {
		return fmt.Errorf("ext4: %d blocks and %d inodes per group: %w", sb.blocksPerGroup, sb.inodesPerGroup, guestfs.ErrCorrupt)
	}
	if sb.blocksCount == 0 || uint64(sb.firstDataBlock) >= sb.blocksCount {
		return fmt.Errorf("ext4: %d blocks, first data block %d: %w", sb.blocksCount, sb.firstDataBlock, guestfs.ErrCorrupt)
	}
	if sb.blocksCount > uint64(size/bs) {
		return fmt.Errorf("ext4: %d blocks of %d bytes do not fit the volume's %d bytes: %w", sb.blocksCount, bs, size, guestfs.ErrCorrupt)
	}
	if uint64(sb.inodesCount) > sb.groupCount()*uint64(sb.inodesPerGroup) || sb.inodesCount < 2 {
		return fmt.Errorf("ext4: %d inodes in %d groups of %d: %w", sb.inodesCount, sb.groupCount(), sb.inodesPerGroup, guestfs.ErrCorrupt)
	}
	if sb.firstIno < 3 {
		sb.firstIno = 11
	}
	return nil
}

func (sb *superblock) groupCount() uint64 {
	return (sb.blocksCount - uint64(sb.firstDataBlock) + uint64(sb.blocksPerGroup) - 1) / uint64(sb.blocksPerGroup)
}

func featureNames(bits uint32) string {
	var names []string
	for i := 0; i < 32; i++ {
		b := uint32(1) << i
		if bits&b == 0 {
			continue
		}
		if n, ok := incompatNames[b]; ok {
			names = append(names, n)
		} else {
			names = append(names, fmt.Sprintf("%#x", b))
		}
	}
	return strings.Join(names, ",")
}

// fsType names the filesystem as blkid does: ext2 without a journal and
// with no feature ext2 lacks, ext3 with a journal and no feature ext3
// lacks, ext4 otherwise (ext4dev when the test flag is set).
func (sb *superblock) fsType() string {
	const (
		ext2ROSupp  = roCompatSparseSuper | roCompatLargeFile | roCompatBtreeDir
		ext2InSupp  = incompatFiletype | incompatMetaBG
		ext3InSupp  = incompatFiletype | incompatRecover | incompatMetaBG
		ext3ROSupp  = ext2ROSupp
		hasJournal  = compatHasJournal
		isTestFSBit = flagTestFS
	)
	journal := sb.compat&hasJournal != 0
	switch {
	case !journal && sb.roCompat&^ext2ROSupp == 0 && sb.incompat&^ext2InSupp == 0:
		return "ext2"
	case journal && sb.roCompat&^ext3ROSupp == 0 && sb.incompat&^ext3InSupp == 0:
		return "ext3"
	case sb.flags&isTestFSBit != 0:
		return "ext4dev"
	}
	return "ext4"
}

func (sb *superblock) uuidString() string {
	u := sb.uuid
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (sb *superblock) label() string {
	n := 0
	for n < len(sb.volumeName) && sb.volumeName[n] != 0 {
		n++
	}
	return string(sb.volumeName[:n])
}

// Probe reports whether the volume has an ext2/3/4 superblock: the magic
// number and a block size the format allows.
func Probe(r io.ReaderAt, size int64) bool {
	if size < superblockOffset+superblockSize {
		return false
	}
	var b [superblockSize]byte
	if _, err := r.ReadAt(b[:], superblockOffset); err != nil {
		return false
	}
	sb, err := parseSuperblock(b[:])
	return err == nil && sb.logBlockSize <= 6
}
