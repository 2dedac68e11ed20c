package ext4

import (
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Inode flags (i_flags).
const (
	inodeImmutable  = 0x10
	inodeAppend     = 0x20
	inodeNoDump     = 0x40
	inodeEncrypt    = 0x800
	inodeIndex      = 0x1000
	inodeHugeFile   = 0x40000
	inodeExtents    = 0x80000
	inodeEAInode    = 0x200000
	inodeInlineData = 0x10000000
	inodeCasefold   = 0x40000000
)

const goodOldInodeSize = 128

// inode is a parsed on-disk inode: what Stat shows and what reading its
// data needs. It is immutable once parsed and shared through the cache.
type inode struct {
	ino        uint32
	mode       uint16
	uid, gid   uint32
	size       int64
	nlink      uint16
	blocks     int64 // bytes, as st_blocks*512
	flags      uint32
	block      [60]byte
	generation uint32
	fileACL    uint64
	atime      time.Time
	ctime      time.Time
	mtime      time.Time
	crtime     time.Time
	// xattrs is the in-inode extended attribute area after its magic
	// number (values' offsets count from its start), nil when absent.
	xattrs []byte
	// seed is the checksum seed of the inode's extent, directory and
	// htree blocks: crc32c of the volume seed, inode number, generation.
	seed uint32
}

func (in *inode) fileType() uint32 { return uint32(in.mode) & guestfs.TypeMask }

// inode returns inode ino, parsed, from the cache or its inode table.
func (fs *FS) inode(ino uint64) (*inode, error) {
	if ino < 1 || ino > uint64(fs.sb.inodesCount) {
		return nil, fmt.Errorf("ext4: inode %d: %w", ino, guestfs.ErrNotExist)
	}
	if in, ok := fs.inodes.Get(uint32(ino)); ok {
		return in, nil
	}
	g := (ino - 1) / uint64(fs.sb.inodesPerGroup)
	idx := (ino - 1) % uint64(fs.sb.inodesPerGroup)
	if g >= uint64(len(fs.groups)) {
		return nil, fmt.Errorf("ext4: inode %d: group %d: %w", ino, g, guestfs.ErrNotExist)
	}
	isz := uint64(fs.sb.inodeSize)
	off := idx * isz
	cb, err := fs.block(fs.groups[g] + off/uint64(fs.bs))
	if err != nil {
		return nil, fmt.Errorf("ext4: inode %d: %w", ino, err)
	}
	raw := cb.data[off%uint64(fs.bs) : off%uint64(fs.bs)+isz]
	in, err := fs.parseInode(uint32(ino), raw)
	if err != nil {
		return nil, err
	}
	fs.inodes.Put(uint32(ino), in, 1)
	return in, nil
}

func (fs *FS) parseInode(ino uint32, raw []byte) (*inode, error) {
	le := binary.LittleEndian
	in := &inode{
		ino:        ino,
		mode:       le.Uint16(raw[0x0:]),
		uid:        uint32(le.Uint16(raw[0x2:])) | uint32(le.Uint16(raw[0x78:]))<<16,
		gid:        uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[0x7A:]))<<16,
		nlink:      le.Uint16(raw[0x1A:]),
		flags:      le.Uint32(raw[0x20:]),
		generation: le.Uint32(raw[0x64:]),
		fileACL:    uint64(le.Uint32(raw[0x68:])),
	}
	if in.nlink == 0 {
		// Deleted or never used: the kernel answers ESTALE.
		return nil, fmt.Errorf("ext4: inode %d is not in use: %w", ino, guestfs.ErrNotExist)
	}
	extra := 0
	if len(raw) > goodOldInodeSize {
		extra = int(le.Uint16(raw[0x80:]))
		if goodOldInodeSize+extra > len(raw) || extra&3 != 0 {
			return nil, fmt.Errorf("ext4: inode %d: extra size %d: %w", ino, extra, guestfs.ErrCorrupt)
		}
	}
	// fits says whether the 4-byte field at off lies in the extra area.
	fits := func(off int) bool { return off+4 <= goodOldInodeSize+extra }
	if fs.sb.hasMetadataCsum && fs.sb.creatorOS == 0 {
		seed := crc32cU32(crc32cU32(fs.csumSeed, ino), in.generation)
		in.seed = seed
		hiFits := len(raw) > goodOldInodeSize && fits(0x82)
		c := crc32cSkip(seed, raw[:goodOldInodeSize], 0x7C, 2)
		if len(raw) > goodOldInodeSize {
			if hiFits {
				c = crc32cSkip(c, raw[goodOldInodeSize:], 0x82-goodOldInodeSize, 2)
			} else {
				c = crc32c(c, raw[goodOldInodeSize:])
			}
		}
		stored := uint32(le.Uint16(raw[0x7C:]))
		if hiFits {
			stored |= uint32(le.Uint16(raw[0x82:])) << 16
		} else {
			c &= 0xFFFF
		}
		if c != stored {
			return nil, fmt.Errorf("ext4: inode %d: checksum mismatch: %w", ino, guestfs.ErrCorrupt)
		}
	}
	switch in.fileType() {
	case guestfs.TypeRegular, guestfs.TypeDir, guestfs.TypeSymlink, guestfs.TypeChar,
		guestfs.TypeBlock, guestfs.TypeFIFO, guestfs.TypeSocket:
	default:
		return nil, fmt.Errorf("ext4: inode %d: mode %#o: %w", ino, in.mode, guestfs.ErrCorrupt)
	}
	size := uint64(le.Uint32(raw[0x4:]))
	if in.fileType() == guestfs.TypeRegular || fs.sb.incompat&incompatLargeDir != 0 {
		size |= uint64(le.Uint32(raw[0x6C:])) << 32
	}
	if int64(size) < 0 {
		return nil, fmt.Errorf("ext4: inode %d: size %d: %w", ino, size, guestfs.ErrCorrupt)
	}
	in.size = int64(size)
	blocks := uint64(le.Uint32(raw[0x1C:]))
	if fs.sb.roCompat&roCompatHugeFile != 0 {
		blocks |= uint64(le.Uint16(raw[0x74:])) << 32
		if in.flags&inodeHugeFile != 0 {
			blocks *= uint64(fs.bs / 512)
		}
	}
	in.blocks = int64(blocks * 512)
	if fs.sb.incompat&incompat64bit != 0 {
		in.fileACL |= uint64(le.Uint16(raw[0x76:])) << 32
	}
	copy(in.block[:], raw[0x28:0x28+60])

	decode := func(base, extraOff int) time.Time {
		sec := int64(int32(le.Uint32(raw[base:])))
		if extraOff == 0 || !fits(extraOff) {
			return time.Unix(sec, 0)
		}
		x := le.Uint32(raw[extraOff:])
		sec += int64(x&3) << 32
		return time.Unix(sec, int64(x>>2))
	}
	in.atime = decode(0x8, 0x8C)
	in.ctime = decode(0xC, 0x84)
	in.mtime = decode(0x10, 0x88)
	if fits(0x90) {
		in.crtime = decode(0x90, 0x94)
	}
	if len(raw) > goodOldInodeSize {
		area := raw[goodOldInodeSize+extra:]
		if len(area) >= 4 && le.Uint32(area) == xattrMagic {
			in.xattrs = append([]byte(nil), area[4:]...)
		}
	}
	if in.flags&inodeInlineData != 0 && in.flags&inodeExtents != 0 {
		return nil, fmt.Errorf("ext4: inode %d: both inline data and extents: %w", ino, guestfs.ErrCorrupt)
	}
	return in, nil
}

// Stat returns inode ino's attributes as the kernel's stat shows them.
func (fs *FS) Stat(ino uint64) (guestfs.Attr, error) {
	in, err := fs.inode(ino)
	if err != nil {
		return guestfs.Attr{}, err
	}
	a := guestfs.Attr{
		Ino:    ino,
		Mode:   uint32(in.mode),
		Nlink:  uint32(in.nlink),
		Uid:    in.uid,
		Gid:    in.gid,
		Size:   in.size,
		Blocks: in.blocks,
		Atime:  in.atime,
		Mtime:  in.mtime,
		Ctime:  in.ctime,
		Btime:  in.crtime,
	}
	if in.flags&inodeInlineData != 0 && in.fileType() == guestfs.TypeRegular {
		// The kernel reports a regular file whose data sits in the inode as
		// occupying its size, so that tar and rsync do not think it
		// all hole.
		a.Blocks += (in.size + 511) &^ 511
	}
	if t := in.fileType(); t == guestfs.TypeChar || t == guestfs.TypeBlock {
		a.Rdev = in.rdev()
	}
	if in.flags&inodeImmutable != 0 {
		a.Flags |= guestfs.FlagImmutable
	}
	if in.flags&inodeAppend != 0 {
		a.Flags |= guestfs.FlagAppend
	}
	if in.flags&inodeNoDump != 0 {
		a.Flags |= guestfs.FlagNoDump
	}
	if in.flags&inodeEncrypt != 0 {
		a.Flags |= guestfs.FlagEncrypted
	}
	return a, nil
}

// rdev decodes a device number from i_block: the old 8:8 encoding in the
// first word, or the new 12:20 one in the second (as the kernel's
// old_decode_dev and new_decode_dev).
func (in *inode) rdev() uint64 {
	le := binary.LittleEndian
	if old := le.Uint32(in.block[0:]); old != 0 {
		return unix.Mkdev((old>>8)&0xff, old&0xff)
	}
	d := le.Uint32(in.block[4:])
	return unix.Mkdev((d&0xfff00)>>8, (d&0xff)|((d>>12)&0xfff00))
}
