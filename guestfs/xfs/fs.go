package xfs

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/lru"
)

var _ guestfs.FS = (*FS)(nil)

// Cache sizes: a walk revisits inode blocks (dozens of inodes each) and
// directory blocks (Lookup after ReadDir); a few MiB keep both hot.
const (
	blockCacheBytes = 8 << 20
	inodeCacheBytes = 4 << 20
)

// FS is an XFS filesystem opened read-only.
type FS struct {
	r      io.ReaderAt
	size   int64
	sb     *superblock
	info   guestfs.Info
	verify bool // check v5 CRCs (the fuzz test turns it off to reach deeper)

	blocks *lru.Cache[blockKey, *cblock]
	inodes *lru.Cache[uint64, *inode]
}

// blockKey names a cached metadata block: a filesystem block by its linear
// number (ino 0, fork fsbFork), or a directory/attribute block by the
// inode, fork and logical block it starts at (a directory block can span
// several filesystem blocks, not always contiguous).
type blockKey struct {
	ino  uint64
	fork uint8
	blk  uint64
}

const fsbFork = 255

// cblock is a cached block; checked records as what kind of block (one
// of the kind* constants) its CRC and header were verified, so that a hot
// block is verified once, and a block checked as one kind is checked
// again when reached as another.
type cblock struct {
	data    []byte
	checked atomic.Uint32
}

const (
	kindNone uint32 = iota
	kindBmbt
	kindDir
	kindAttr
	kindRemote
)

// Open reads the superblock and returns the filesystem.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	return open(r, size, true)
}

func open(r io.ReaderAt, size int64, verify bool) (*FS, error) {
	if size < 512 {
		return nil, fmt.Errorf("xfs: volume of %d bytes: %w", size, guestfs.ErrNotFS)
	}
	hdr := make([]byte, 512)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("xfs: reading the superblock: %w", err)
	}
	sb, warns, err := parseSuperblock(hdr, size)
	if err != nil {
		return nil, err
	}
	if sb.v5 && verify {
		full := make([]byte, sb.sectSize)
		if _, err := r.ReadAt(full, 0); err != nil {
			return nil, fmt.Errorf("xfs: reading the superblock: %w", err)
		}
		if !crcOK(full, 224) {
			return nil, fmt.Errorf("xfs: superblock CRC mismatch: %w", guestfs.ErrCorrupt)
		}
	}
	f := &FS{
		r: r, size: size, sb: sb, verify: verify,
		blocks: lru.New[blockKey, *cblock](blockCacheBytes),
		inodes: lru.New[uint64, *inode](inodeCacheBytes),
	}
	if _, err := f.inode(sb.rootIno); err != nil {
		return nil, fmt.Errorf("xfs: root directory: %w", err)
	}
	if w := f.checkLog(); w != "" {
		warns = append(warns, w)
	}
	f.info = guestfs.Info{
		Type:      "xfs",
		Label:     sb.label,
		UUID:      uuidString(sb.uuid),
		BlockSize: int(sb.blockSize),
		Size:      int64(sb.dblocks) << sb.blockLog,
		Warnings:  warns,
	}
	return f, nil
}

// Info describes the filesystem.
func (f *FS) Info() guestfs.Info {
	i := f.info
	i.Warnings = append([]string(nil), i.Warnings...)
	return i
}

// Root is the root directory's inode number.
func (f *FS) Root() uint64 { return f.sb.rootIno }

// fsbToLinear turns a filesystem block number (AG number in the high bits,
// block within the AG in the low agblklog bits) into a linear block
// number, checking that n blocks from there stay inside one AG and the
// volume.
func (f *FS) fsbToLinear(fsb, n uint64) (uint64, bool) {
	ag := fsb >> f.sb.agBlkLog
	agb := fsb & (1<<f.sb.agBlkLog - 1)
	if ag >= uint64(f.sb.agCount) || agb >= uint64(f.sb.agBlocks) || n > uint64(f.sb.agBlocks)-agb {
		return 0, false
	}
	lin := ag*uint64(f.sb.agBlocks) + agb
	if lin+n > f.sb.dblocks {
		return 0, false
	}
	return lin, true
}

// readLinear reads n whole blocks from linear block lin into a fresh
// buffer, checked against the volume's end.
func (f *FS) readLinear(lin, n uint64) ([]byte, error) {
	if n == 0 || lin >= f.sb.dblocks || n > f.sb.dblocks-lin || n > 1<<(20-f.sb.blockLog) {
		return nil, fmt.Errorf("xfs: blocks %d+%d outside the volume: %w", lin, n, guestfs.ErrCorrupt)
	}
	b := make([]byte, n<<f.sb.blockLog)
	if _, err := f.r.ReadAt(b, int64(lin<<f.sb.blockLog)); err != nil {
		return nil, fmt.Errorf("xfs: reading block %d: %w", lin, err)
	}
	return b, nil
}

// block returns one filesystem block by linear number, through the cache.
func (f *FS) block(lin uint64) (*cblock, error) {
	k := blockKey{fork: fsbFork, blk: lin}
	if c, ok := f.blocks.Get(k); ok {
		return c, nil
	}
	b, err := f.readLinear(lin, 1)
	if err != nil {
		return nil, err
	}
	c := &cblock{data: b}
	f.blocks.Put(k, c, len(b)+64)
	return c, nil
}

// daddr is a linear block's address in 512-byte sectors, as v5 headers
// record it.
func (f *FS) daddr(lin uint64) uint64 { return lin << (f.sb.blockLog - 9) }

func corruptf(format string, a ...any) error {
	return fmt.Errorf("xfs: "+format+": %w", append(a, guestfs.ErrCorrupt)...)
}
