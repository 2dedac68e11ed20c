package ext4

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/lru"
)

var _ guestfs.FS = (*FS)(nil)

const (
	rootIno = 2
	// inodeCacheEntries bounds the parsed inodes kept (a parsed inode is
	// a few hundred bytes, so about 1.5 MiB).
	inodeCacheEntries = 4096
	// blockCacheBytes bounds the metadata blocks kept: inode table,
	// directory, extent index, indirect and xattr blocks.
	blockCacheBytes = 4 << 20
	maxWarnings     = 64
)

// FS is an opened ext2, ext3 or ext4 volume. It is safe for concurrent use.
type FS struct {
	r        io.ReaderAt
	size     int64
	sb       *superblock
	bs       int64
	groups   []uint64 // each group's inode table block
	csumSeed uint32
	// hashUnsigned is 3 when the volume's htree hashes treat names as
	// unsigned chars (DX_HASH_*_UNSIGNED = DX_HASH_* + 3), else 0.
	hashUnsigned uint8
	itBlocks     uint64 // blocks of one group's inode table

	inodes *lru.Cache[uint32, *inode]       // cost 1 each: bounded by count
	blocks *lru.Cache[uint64, *cachedBlock] // cost 1 each

	warnMu   sync.Mutex
	warnings []string
	warned   map[string]bool
}

// cachedBlock is a metadata block as read, and the inode whose checksum
// seed it was last verified with (blocks checked with the volume seed, as
// xattr blocks are, use verifiedAny).
type cachedBlock struct {
	data     []byte
	verified atomic.Uint64
}

const verifiedAny = ^uint64(0)

// Open reads the superblock and the group descriptors, and refuses what it
// cannot read correctly: unknown incompatible features (as the kernel
// refuses to mount), a geometry that does not fit the volume.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < superblockOffset+superblockSize {
		return nil, fmt.Errorf("ext4: volume of %d bytes: %w", size, guestfs.ErrNotFS)
	}
	b := make([]byte, superblockSize)
	if _, err := r.ReadAt(b, superblockOffset); err != nil {
		return nil, fmt.Errorf("ext4: reading the superblock: %w", err)
	}
	sb, err := parseSuperblock(b)
	if err != nil {
		return nil, err
	}
	if err := sb.check(size); err != nil {
		return nil, err
	}
	fs := &FS{r: r, size: size, sb: sb, bs: sb.blockSize(), warned: map[string]bool{}}
	if sb.incompat&incompatCsumSeed != 0 {
		fs.csumSeed = sb.checksumSeed
	} else {
		fs.csumSeed = crc32c(^uint32(0), sb.uuid[:])
	}
	if sb.flags&flagUnsignedHash != 0 {
		fs.hashUnsigned = 3
	}
	fs.itBlocks = (uint64(sb.inodesPerGroup)*uint64(sb.inodeSize) + uint64(fs.bs) - 1) / uint64(fs.bs)
	if err := fs.readGroups(); err != nil {
		return nil, err
	}
	// A parsed inode keeps a copy of its xattr area, up to the inode
	// size: bound the cache by bytes too (8 MiB), for volumes of large
	// inodes.
	fs.inodes = lru.New[uint32, *inode](min(inodeCacheEntries, max(64, (8<<20)/int(sb.inodeSize))))
	fs.blocks = lru.New[uint64, *cachedBlock](max(1, int(blockCacheBytes/fs.bs)))
	if sb.incompat&incompatRecover != 0 {
		fs.warn("the journal needs recovery (needs_recovery): read as it stands, without replaying it; recent changes may be missing")
	}
	if sb.state&0x2 != 0 {
		fs.warn("the filesystem is marked as having errors")
	}
	if sb.incompat&incompatCasefold != 0 {
		fs.warn("casefold: names in case-insensitive directories are matched exactly")
	}
	return fs, nil
}

// hasSuper says whether group g holds a superblock backup (and so, without
// meta_bg, a copy of the descriptors): ext4_bg_has_super.
func (fs *FS) hasSuper(g uint64) bool {
	sb := fs.sb
	if g == 0 {
		return true
	}
	if sb.compat&0x200 != 0 { // sparse_super2
		return g == uint64(sb.backupBGs[0]) || g == uint64(sb.backupBGs[1])
	}
	if g <= 1 || sb.roCompat&roCompatSparseSuper == 0 {
		return true
	}
	if g&1 == 0 {
		return false
	}
	for _, base := range []uint64{3, 5, 7} {
		p := base
		for p < g {
			p *= base
		}
		if p == g {
			return true
		}
	}
	return false
}

// descBlock is where descriptor block n lives: right after the superblock,
// or with meta_bg (from s_first_meta_bg on) at the start of the first
// group of its meta group, after that group's superblock backup.
func (fs *FS) descBlock(n uint64) uint64 {
	sb := fs.sb
	first := uint64(sb.firstDataBlock)
	if sb.incompat&incompatMetaBG == 0 || n < uint64(sb.firstMetaBG) {
		return first + 1 + n
	}
	g := n * uint64(fs.bs/int64(sb.descSize))
	b := first + g*uint64(sb.blocksPerGroup)
	if fs.hasSuper(g) {
		b++
	}
	return b
}

func (fs *FS) readGroups() error {
	sb := fs.sb
	n := sb.groupCount()
	ds := uint64(sb.descSize)
	// The descriptors must fit the volume: this bounds the allocation.
	if n*ds > uint64(fs.size) || n > 1<<32 {
		return fmt.Errorf("ext4: %d block groups: %w", n, guestfs.ErrCorrupt)
	}
	perBlock := uint64(fs.bs) / ds
	fs.groups = make([]uint64, n)
	buf := make([]byte, fs.bs)
	badCsum := 0
	for g := uint64(0); g < n; g++ {
		if g%perBlock == 0 {
			blk := fs.descBlock(g / perBlock)
			if blk >= sb.blocksCount {
				return fmt.Errorf("ext4: descriptors of group %d at block %d, past the end: %w", g, blk, guestfs.ErrCorrupt)
			}
			if _, err := fs.r.ReadAt(buf, int64(blk)*fs.bs); err != nil {
				return fmt.Errorf("ext4: reading group descriptors at block %d: %w", blk, err)
			}
		}
		d := buf[(g%perBlock)*ds : (g%perBlock+1)*ds]
		it := uint64(binary.LittleEndian.Uint32(d[8:]))
		if ds >= 64 {
			it |= uint64(binary.LittleEndian.Uint32(d[0x28:])) << 32
		}
		if it <= uint64(sb.firstDataBlock) || it+fs.itBlocks > sb.blocksCount {
			return fmt.Errorf("ext4: group %d: inode table at block %d outside the volume: %w", g, it, guestfs.ErrCorrupt)
		}
		fs.groups[g] = it
		if sb.hasMetadataCsum {
			c := crc32cU32(fs.csumSeed, uint32(g))
			c = crc32cSkip(c, d, 0x1E, 2)
			if uint16(c) != binary.LittleEndian.Uint16(d[0x1E:]) {
				badCsum++
			}
		}
	}
	if badCsum > 0 {
		// The kernel only logs this on a read-only mount; so do we.
		fs.warn(fmt.Sprintf("%d group descriptors fail their checksum", badCsum))
	}
	return nil
}

// warn records something tolerated, once per message, for Info.Warnings.
func (fs *FS) warn(msg string) {
	fs.warnMu.Lock()
	defer fs.warnMu.Unlock()
	if fs.warned[msg] || len(fs.warnings) >= maxWarnings {
		return
	}
	fs.warned[msg] = true
	fs.warnings = append(fs.warnings, msg)
}

// Info describes the volume; Warnings include what later reads tolerated
// (an htree index read past by a linear scan, say).
func (fs *FS) Info() guestfs.Info {
	fs.warnMu.Lock()
	w := append([]string(nil), fs.warnings...)
	fs.warnMu.Unlock()
	return guestfs.Info{
		Type:      fs.sb.fsType(),
		Label:     fs.sb.label(),
		UUID:      fs.sb.uuidString(),
		BlockSize: int(fs.bs),
		Size:      int64(fs.sb.blocksCount) * fs.bs,
		Warnings:  w,
	}
}

// Root is inode 2, as in every ext2/3/4 volume.
func (fs *FS) Root() uint64 { return rootIno }

// validRun checks that n blocks from phys lie inside the volume and past
// the boot block and superblock, so that no read leaves [0, size).
func (fs *FS) validRun(phys, n uint64) bool {
	return phys > uint64(fs.sb.firstDataBlock) && n <= fs.sb.blocksCount && phys <= fs.sb.blocksCount-n
}

// block returns metadata block phys, from the cache or read whole. The
// slice is shared: callers never modify it.
func (fs *FS) block(phys uint64) (*cachedBlock, error) {
	if cb, ok := fs.blocks.Get(phys); ok {
		return cb, nil
	}
	if !fs.validRun(phys, 1) {
		return nil, fmt.Errorf("ext4: block %d outside the volume: %w", phys, guestfs.ErrCorrupt)
	}
	b := make([]byte, fs.bs)
	if _, err := fs.r.ReadAt(b, int64(phys)*fs.bs); err != nil {
		return nil, fmt.Errorf("ext4: reading block %d: %w", phys, err)
	}
	cb := &cachedBlock{data: b}
	fs.blocks.Put(phys, cb, 1)
	return cb, nil
}
