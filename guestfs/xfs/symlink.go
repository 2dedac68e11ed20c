package xfs

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
)

// maxSymlinkLen is XFS's limit on a link target (XFS_SYMLINK_MAXLEN).
const maxSymlinkLen = 1024

// Readlink returns a symlink's target: in the inode (short targets) or in
// up to a few blocks, each behind a header naming its owner on v5.
func (f *FS) Readlink(ino uint64) (string, error) {
	ip, err := f.inode(ino)
	if err != nil {
		return "", err
	}
	if uint32(ip.mode)&guestfs.TypeMask != guestfs.TypeSymlink {
		return "", fmt.Errorf("xfs: inode %d: %w", ino, guestfs.ErrNotLink)
	}
	if ip.size <= 0 || ip.size > maxSymlinkLen {
		return "", corruptf("inode %d: symlink of %d bytes", ino, ip.size)
	}
	n := int(ip.size)
	if ip.format == fmtLocal {
		if n > len(ip.dfork) {
			return "", corruptf("inode %d: inline symlink of %d bytes in a %d-byte fork", ino, n, len(ip.dfork))
		}
		return string(ip.dfork[:n]), nil
	}
	// A remote target fills the blocks of one or more extents; on v5 each
	// extent (the buffer the kernel wrote) starts with a header naming
	// the owner, the offset in the target and the bytes it holds, and
	// its CRC covers the whole extent.
	hdr := 0
	if f.sb.v5 {
		hdr = 56
	}
	out := make([]byte, 0, n)
	for lblk := uint64(0); len(out) < n; {
		e, ok, _, err := f.mapBlock(ip, false, lblk)
		if err != nil {
			return "", err
		}
		if !ok || e.unwritten || e.off != lblk || e.len > 8 {
			return "", corruptf("inode %d: symlink block %d not mapped", ino, lblk)
		}
		b, err := f.readLinear(e.blk, e.len)
		if err != nil {
			return "", err
		}
		want := min(n-len(out), len(b)-hdr)
		if f.sb.v5 {
			be := binary.BigEndian
			if be.Uint32(b) != rmtMagicSymlink || int(be.Uint32(b[4:])) != len(out) || int(be.Uint32(b[8:])) != want ||
				be.Uint64(b[32:]) != ino || be.Uint64(b[40:]) != f.daddr(e.blk) {
				return "", corruptf("inode %d: symlink block %d header", ino, lblk)
			}
			if f.verify && !crcOK(b, 12) {
				return "", corruptf("inode %d: symlink block %d CRC mismatch", ino, lblk)
			}
		}
		out = append(out, b[hdr:hdr+want]...)
		lblk += e.len
	}
	return string(out), nil
}

// decodeDev converts the device number XFS keeps in a device inode's data
// fork (the old System V layout: 14-bit major above an 18-bit minor) to
// Linux's encoding, as the kernel does when it loads the inode.
func decodeDev(d uint32) uint64 {
	return unix.Mkdev(d>>18&0x1ff, d&0x3ffff)
}
