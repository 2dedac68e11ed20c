package ext4

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/guestfs"
)

// maxLink is the longest target the kernel follows (PATH_MAX less the NUL).
const maxLink = 4095

// Readlink returns a symlink's target: from i_block for a fast symlink,
// else from its data (extent- or block-mapped, or inline).
func (fs *FS) Readlink(ino uint64) (string, error) {
	in, err := fs.inode(ino)
	if err != nil {
		return "", err
	}
	if in.fileType() != guestfs.TypeSymlink {
		return "", fmt.Errorf("ext4: inode %d: %w", ino, guestfs.ErrNotLink)
	}
	if in.flags&inodeEncrypt != 0 {
		return "", fmt.Errorf("ext4: symlink %d is encrypted: %w", ino, guestfs.ErrUnsupported)
	}
	if in.size > maxLink {
		return "", fmt.Errorf("ext4: symlink %d: target of %d bytes: %w", ino, in.size, guestfs.ErrCorrupt)
	}
	var t []byte
	if fs.fastSymlink(in) {
		if in.size >= int64(len(in.block)) {
			return "", fmt.Errorf("ext4: fast symlink %d of %d bytes: %w", ino, in.size, guestfs.ErrCorrupt)
		}
		t = in.block[:in.size]
	} else {
		f, err := fs.openData(in)
		if err != nil {
			return "", err
		}
		t = make([]byte, in.size)
		if _, err := f.ReadAt(t, 0); err != nil && err != io.EOF {
			return "", fmt.Errorf("ext4: symlink %d: %w", ino, err)
		}
	}
	// The kernel hands the target on as a C string.
	if i := bytes.IndexByte(t, 0); i >= 0 {
		t = t[:i]
	}
	return string(t), nil
}

// fastSymlink is the kernel's ext4_inode_is_fast_symlink: no blocks other
// than an xattr block, no inline data (an EA inode would say otherwise,
// but symlinks are never EA inodes).
func (fs *FS) fastSymlink(in *inode) bool {
	if in.flags&inodeInlineData != 0 {
		return false
	}
	if in.flags&inodeEAInode != 0 {
		return in.size > 0 && in.size < int64(len(in.block))
	}
	ea := int64(0)
	if in.fileACL != 0 {
		ea = fs.bs // one cluster; bigalloc volumes are read as their blocks
	}
	return in.blocks-ea == 0
}
