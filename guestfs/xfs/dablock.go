package xfs

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Magic numbers of directory and attribute blocks, v4 and v5.
const (
	dirBlockMagicV4 = 0x58443242 // "XD2B": single-block directory
	dirBlockMagicV5 = 0x58444233 // "XDB3"
	dirDataMagicV4  = 0x58443244 // "XD2D": data block of a larger one
	dirDataMagicV5  = 0x58444433 // "XDD3"
	dirFreeMagicV5  = 0x58444633 // "XDF3"
	leaf1MagicV4    = 0xd2f1     // leaf of a leaf-form directory
	leaf1MagicV5    = 0x3df1
	leafNMagicV4    = 0xd2ff // leaf of a node-form directory
	leafNMagicV5    = 0x3dff
	daNodeMagicV4   = 0xfebe // interior node of a dir or attr B+tree
	daNodeMagicV5   = 0x3ebe
	attrLeafMagicV4 = 0xfbee
	attrLeafMagicV5 = 0x3bee
	rmtMagicAttr    = 0x5841524d // "XARM": remote attribute value block
	rmtMagicSymlink = 0x58534c4d // "XSLM": remote symlink block
)

// forkBlock reads n filesystem blocks of a fork from logical block lblk
// on, as one buffer (a directory block can span several extents), through
// the cache, and on v5 checks its self-describing header (CRC, owner, the
// block number of the first filesystem block) by its magic.
func (f *FS) forkBlock(ip *inode, attr bool, lblk, n uint64) ([]byte, error) {
	fork := uint8(0)
	if attr {
		fork = 1
	}
	k := blockKey{ino: ip.ino, fork: fork, blk: lblk}
	if c, ok := f.blocks.Get(k); ok {
		return c.data, nil
	}
	if n == 0 || n > 1<<(16-f.sb.blockLog) {
		return nil, corruptf("inode %d: block of %d filesystem blocks", ip.ino, n)
	}
	var buf []byte
	first := uint64(0)
	for i := uint64(0); i < n; {
		e, ok, _, err := f.mapBlock(ip, attr, lblk+i)
		if err != nil {
			return nil, err
		}
		if !ok || e.unwritten {
			return nil, corruptf("inode %d: fork block %d is not mapped", ip.ino, lblk+i)
		}
		run := min(e.off+e.len-(lblk+i), n-i)
		lin := e.blk + (lblk + i - e.off)
		if i == 0 {
			first = lin
			if run == n {
				if buf, err = f.readLinear(lin, n); err != nil {
					return nil, err
				}
				break
			}
			buf = make([]byte, 0, n<<f.sb.blockLog)
		}
		b, err := f.readLinear(lin, run)
		if err != nil {
			return nil, err
		}
		buf = append(buf, b...)
		i += run
	}
	if f.sb.v5 {
		if err := f.checkV5Block(ip, buf, first); err != nil {
			return nil, err
		}
	}
	f.blocks.Put(k, &cblock{data: buf}, len(buf)+64)
	return buf, nil
}

// checkV5Block verifies a v5 directory or attribute block's header. A
// block whose magic is none of those leaves the check to its parser,
// which rejects the magic.
func (f *FS) checkV5Block(ip *inode, b []byte, lin uint64) error {
	be := binary.BigEndian
	crcOff, blkOff, ownOff := -1, 0, 0
	if len(b) >= 64 {
		switch be.Uint32(b) {
		case dirBlockMagicV5, dirDataMagicV5, dirFreeMagicV5:
			crcOff, blkOff, ownOff = 4, 8, 40
		}
		if crcOff < 0 {
			switch be.Uint16(b[8:]) {
			case leaf1MagicV5, leafNMagicV5, daNodeMagicV5, attrLeafMagicV5:
				crcOff, blkOff, ownOff = 12, 16, 48
			}
		}
	}
	if crcOff < 0 {
		return nil
	}
	if f.verify && !crcOK(b, crcOff) {
		return fmt.Errorf("xfs: inode %d: block %d: CRC mismatch: %w", ip.ino, lin, guestfs.ErrCorrupt)
	}
	if be.Uint64(b[blkOff:]) != f.daddr(lin) || be.Uint64(b[ownOff:]) != ip.ino {
		return fmt.Errorf("xfs: inode %d: block %d: header names another block or owner: %w", ip.ino, lin, guestfs.ErrCorrupt)
	}
	return nil
}
