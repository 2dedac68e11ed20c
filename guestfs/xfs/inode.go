package xfs

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
)

const inodeMagic = 0x494e // "IN"

// Data and attribute fork formats (di_format, di_aformat).
const (
	fmtDev     = 0
	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3
)

// di_flags bits the reader shows or acts on.
const (
	diflagRealtime  = 0x0001
	diflagImmutable = 0x0008
	diflagAppend    = 0x0010
	diflagNoDump    = 0x0080
)

// di_flags2 bits.
const (
	diflag2Bigtime = 0x0008
	diflag2Nrext64 = 0x0010
)

// inode is a parsed on-disk inode: the core fields, and copies of its
// data and attribute forks (a few hundred bytes at most), so that the
// block it came from can leave the cache.
type inode struct {
	ino       uint64
	mode      uint16
	version   uint8
	format    uint8
	aformat   uint8
	uid, gid  uint32
	nlink     uint32
	size      int64
	nblocks   uint64
	flags     uint16
	flags2    uint64
	nextents  uint64
	anextents uint64
	atime     time.Time
	mtime     time.Time
	ctime     time.Time
	crtime    time.Time
	dfork     []byte
	afork     []byte // nil when the inode has no attribute fork
	// dext and aext are the forks' extent lists when in extents format,
	// decoded and checked once.
	dext, aext []extent
}

func (ip *inode) isDir() bool { return uint32(ip.mode)&guestfs.TypeMask == guestfs.TypeDir }

// inodeLoc finds an inode: the linear block holding it and its byte
// offset there. Inode numbers are AG number, block in AG and slot in
// block, packed by the superblock's agblklog and inopblog.
func (f *FS) inodeLoc(ino uint64) (uint64, int, bool) {
	sb := f.sb
	slot := ino & (1<<sb.inoPBLog - 1)
	agb := (ino >> sb.inoPBLog) & (1<<sb.agBlkLog - 1)
	ag := ino >> (sb.inoPBLog + sb.agBlkLog)
	if ag >= uint64(sb.agCount) || agb >= uint64(sb.agBlocks) {
		return 0, 0, false
	}
	lin := ag*uint64(sb.agBlocks) + agb
	if lin >= sb.dblocks {
		return 0, 0, false
	}
	return lin, int(slot << sb.inodeLog), true
}

// inode returns a parsed inode, through the cache.
func (f *FS) inode(ino uint64) (*inode, error) {
	if ip, ok := f.inodes.Get(ino); ok {
		return ip, nil
	}
	lin, off, ok := f.inodeLoc(ino)
	if !ok {
		return nil, fmt.Errorf("xfs: inode %d: outside the filesystem: %w", ino, guestfs.ErrNotExist)
	}
	blk, err := f.block(lin)
	if err != nil {
		return nil, fmt.Errorf("xfs: inode %d: %w", ino, err)
	}
	ip, err := f.parseInode(ino, blk.data[off:off+int(f.sb.inodeSize)])
	if err != nil {
		return nil, err
	}
	f.inodes.Put(ino, ip, 256+len(ip.dfork)+len(ip.afork)+24*(len(ip.dext)+len(ip.aext)))
	return ip, nil
}

func (f *FS) parseInode(ino uint64, b []byte) (*inode, error) {
	be := binary.BigEndian
	sb := f.sb
	if be.Uint16(b[0:]) != inodeMagic {
		return nil, fmt.Errorf("xfs: inode %d: bad magic: %w", ino, guestfs.ErrCorrupt)
	}
	ip := &inode{
		ino:     ino,
		mode:    be.Uint16(b[2:]),
		version: b[4],
		format:  b[5],
		uid:     be.Uint32(b[8:]),
		gid:     be.Uint32(b[12:]),
		nblocks: be.Uint64(b[64:]),
		aformat: b[83],
		flags:   be.Uint16(b[90:]),
	}
	core := 100
	switch {
	case ip.version == 3 && sb.v5:
		core = 176
		if f.verify && !crcOK(b, 100) {
			return nil, fmt.Errorf("xfs: inode %d: CRC mismatch: %w", ino, guestfs.ErrCorrupt)
		}
		if be.Uint64(b[152:]) != ino {
			return nil, fmt.Errorf("xfs: inode %d: records number %d: %w", ino, be.Uint64(b[152:]), guestfs.ErrCorrupt)
		}
		ip.flags2 = be.Uint64(b[120:])
	case (ip.version == 1 || ip.version == 2) && !sb.v5:
	default:
		return nil, fmt.Errorf("xfs: inode %d: version %d: %w", ino, ip.version, guestfs.ErrCorrupt)
	}
	if ip.mode == 0 {
		return nil, fmt.Errorf("xfs: inode %d: not in use: %w", ino, guestfs.ErrNotExist)
	}
	if ip.version == 1 {
		ip.nlink = uint32(be.Uint16(b[6:]))
	} else {
		ip.nlink = be.Uint32(b[16:])
	}
	size := be.Uint64(b[56:])
	if size > math.MaxInt64 {
		return nil, fmt.Errorf("xfs: inode %d: size %d: %w", ino, size, guestfs.ErrCorrupt)
	}
	ip.size = int64(size)
	if ip.flags2&diflag2Nrext64 != 0 {
		ip.nextents = be.Uint64(b[24:])
		ip.anextents = uint64(be.Uint32(b[76:]))
	} else {
		ip.nextents = uint64(be.Uint32(b[76:]))
		ip.anextents = uint64(be.Uint16(b[80:]))
	}
	big := ip.flags2&diflag2Bigtime != 0
	ip.atime = xfsTime(be.Uint64(b[32:]), big)
	ip.mtime = xfsTime(be.Uint64(b[40:]), big)
	ip.ctime = xfsTime(be.Uint64(b[48:]), big)
	if ip.version == 3 {
		ip.crtime = xfsTime(be.Uint64(b[144:]), big)
	}

	// The forks: di_forkoff (in 8-byte units) splits the literal area
	// after the core between the data fork and the attribute fork.
	lit := b[core:]
	if fo := int(b[82]) * 8; fo != 0 {
		if fo >= len(lit) {
			return nil, fmt.Errorf("xfs: inode %d: fork offset %d: %w", ino, fo, guestfs.ErrCorrupt)
		}
		ip.dfork = append([]byte(nil), lit[:fo]...)
		ip.afork = append([]byte(nil), lit[fo:]...)
	} else {
		ip.dfork = append([]byte(nil), lit...)
	}
	var err error
	if ip.format == fmtExtents {
		if ip.dext, err = f.forkExtents(ip, ip.dfork, ip.nextents, "data"); err != nil {
			return nil, err
		}
	}
	if ip.afork != nil && ip.aformat == fmtExtents {
		if ip.aext, err = f.forkExtents(ip, ip.afork, ip.anextents, "attribute"); err != nil {
			return nil, err
		}
	}
	if err := f.checkFormat(ip); err != nil {
		return nil, err
	}
	return ip, nil
}

// checkFormat rejects a data fork format that the file's type cannot
// have, so that later code can trust it.
func (f *FS) checkFormat(ip *inode) error {
	ok := false
	switch uint32(ip.mode) & guestfs.TypeMask {
	case guestfs.TypeRegular:
		ok = ip.format == fmtExtents || ip.format == fmtBtree
	case guestfs.TypeDir:
		ok = ip.format == fmtLocal || ip.format == fmtExtents || ip.format == fmtBtree
	case guestfs.TypeSymlink:
		ok = ip.format == fmtLocal || ip.format == fmtExtents || ip.format == fmtBtree
	case guestfs.TypeChar, guestfs.TypeBlock, guestfs.TypeFIFO, guestfs.TypeSocket:
		ok = ip.format == fmtDev
	}
	if !ok {
		return fmt.Errorf("xfs: inode %d: mode %o with data fork format %d: %w", ip.ino, ip.mode, ip.format, guestfs.ErrCorrupt)
	}
	if ip.format == fmtBtree && len(ip.dfork) < 4+16 {
		return fmt.Errorf("xfs: inode %d: btree root in %d bytes: %w", ip.ino, len(ip.dfork), guestfs.ErrCorrupt)
	}
	if ip.afork != nil {
		switch ip.aformat {
		case fmtLocal, fmtExtents:
		case fmtBtree:
			if len(ip.afork) < 4+16 {
				return fmt.Errorf("xfs: inode %d: attribute btree root in %d bytes: %w", ip.ino, len(ip.afork), guestfs.ErrCorrupt)
			}
		default:
			return fmt.Errorf("xfs: inode %d: attribute fork format %d: %w", ip.ino, ip.aformat, guestfs.ErrCorrupt)
		}
	}
	return nil
}

// xfsTime decodes an on-disk timestamp: seconds (signed 32-bit) and
// nanoseconds, or with bigtime one count of nanoseconds since the
// earliest legacy time, 1901-12-13 20:45:52 UTC.
func xfsTime(v uint64, bigtime bool) time.Time {
	if bigtime {
		return time.Unix(int64(v/1e9)-(1<<31), int64(v%1e9))
	}
	return time.Unix(int64(int32(uint32(v>>32))), int64(uint32(v)))
}

// Stat returns an inode's attributes.
func (f *FS) Stat(ino uint64) (guestfs.Attr, error) {
	ip, err := f.inode(ino)
	if err != nil {
		return guestfs.Attr{}, err
	}
	a := guestfs.Attr{
		Ino:    ino,
		Mode:   uint32(ip.mode),
		Nlink:  ip.nlink,
		Uid:    ip.uid,
		Gid:    ip.gid,
		Size:   ip.size,
		Blocks: -1,
		Atime:  ip.atime,
		Mtime:  ip.mtime,
		Ctime:  ip.ctime,
		Btime:  ip.crtime,
	}
	if ip.nblocks <= math.MaxInt64>>f.sb.blockLog {
		a.Blocks = int64(ip.nblocks) << f.sb.blockLog
	}
	if ip.flags&diflagImmutable != 0 {
		a.Flags |= guestfs.FlagImmutable
	}
	if ip.flags&diflagAppend != 0 {
		a.Flags |= guestfs.FlagAppend
	}
	if ip.flags&diflagNoDump != 0 {
		a.Flags |= guestfs.FlagNoDump
	}
	switch a.Mode & guestfs.TypeMask {
	case guestfs.TypeChar, guestfs.TypeBlock:
		if len(ip.dfork) >= 4 {
			a.Rdev = decodeDev(binary.BigEndian.Uint32(ip.dfork))
		}
	}
	return a, nil
}
