package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ovfmount/ovfmount/appliance"
)

// Writes. A mount with an overlay (Options.Writable) is mounted rw, so that
// the views whose content takes writes (appliance.Writable: the disks' raw
// views, their partitions and logical volumes) can be written in place, by a hypervisor or
// a loop device. Nothing else is: opening any other file for writing, and
// every change to the tree, fails with EROFS, and a view's size never
// changes. The kernel sends every write through (no writeback cache), so
// its page cache stays what the view holds.
//
// Durability follows the file's: a write is durable once fsync(2) or
// fdatasync(2) returns, or at once on a file opened O_SYNC, O_DSYNC or
// O_DIRECT (the handle remembers which).

// viewHandle is a writable view opened for writing.
type viewHandle struct {
	sync bool // each write is durable before it is acknowledged
}

// viewOf is a handle's viewHandle, nil when it was not opened for
// writing; an observed handle holds it (see Observer).
func viewOf(fh gofs.FileHandle) *viewHandle {
	switch h := fh.(type) {
	case *viewHandle:
		return h
	case *observedHandle:
		return h.view
	}
	return nil
}

// writeOpen answers an open(2) for writing of n.
func (n *fileNode) writeOpen(flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if _, ok := n.c.(appliance.Writable); !ok || !n.writable {
		return nil, 0, syscall.EROFS
	}
	if flags&syscall.O_APPEND != 0 {
		return nil, 0, syscall.EPERM // appending would grow the view
	}
	reply := uint32(fuse.FOPEN_KEEP_CACHE)
	if n.directIO {
		reply = fuse.FOPEN_DIRECT_IO
	}
	return &viewHandle{sync: flags&(syscall.O_SYNC|syscall.O_DSYNC|syscall.O_DIRECT) != 0}, reply, 0
}

func (n *fileNode) Write(ctx context.Context, fh gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	w, ok := n.c.(appliance.Writable)
	if !ok || !n.writable {
		return 0, syscall.EROFS
	}
	size := w.Size()
	if off < 0 || off >= size {
		return 0, syscall.ENOSPC // as past the end of a block device
	}
	k := min(int64(len(data)), size-off)
	if err := w.WriteAt(ctx, data[:k], off); err != nil {
		return 0, Errno(n.log, n.path, off, err)
	}
	if h := viewOf(fh); h != nil && h.sync {
		if err := w.Sync(); err != nil {
			return 0, Errno(n.log, n.path, off, err)
		}
	}
	return uint32(k), 0
}

// Fsync makes a writable view's writes durable; elsewhere nothing is ever
// dirty, and it succeeds: tools that only read still sync what they opened
// (partx, blkid, sfdisk on an image file), and would report ENOTSUP as a
// failed write.
func (n *fileNode) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	if w, ok := n.c.(appliance.Writable); ok && n.writable {
		if err := w.Sync(); err != nil {
			return Errno(n.log, n.path, 0, err)
		}
	}
	return 0
}

// fallocate(2) modes (linux/falloc.h).
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
)

// Allocate serves fallocate(2) on a writable view: punching a hole (what
// the loop driver sends for a discard) frees the overlay's space and reads
// as zeros; zeroing a range makes it read as zeros; plain allocation
// inside the view succeeds, as there is nothing to reserve.
func (n *fileNode) Allocate(ctx context.Context, fh gofs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	w, ok := n.c.(appliance.Writable)
	if !ok || !n.writable {
		return syscall.EROFS
	}
	end := uint64(w.Size())
	if off >= end || size == 0 {
		if mode&(fallocPunchHole|fallocKeepSize) != 0 {
			return 0
		}
		return syscall.ENOSPC
	}
	length := int64(min(size, end-off))
	var err error
	switch {
	case mode == fallocPunchHole|fallocKeepSize:
		err = w.Discard(ctx, int64(off), length)
	case mode&^fallocKeepSize == fallocZeroRange:
		err = w.WriteZeroes(ctx, int64(off), length)
	case mode&^fallocKeepSize == 0:
		if off+size > end && mode&fallocKeepSize == 0 {
			return syscall.ENOSPC // it would grow the view
		}
	default:
		return syscall.EOPNOTSUPP
	}
	if err != nil {
		return Errno(n.log, n.path, int64(off), err)
	}
	return 0
}

// Setattr refuses every change but one that changes nothing: a view's size
// is its disk's, and the mount shows fixed owners, modes and times. A
// truncate to the current size (what some writers do) succeeds.
func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := n.c.(appliance.Writable); !ok || !n.writable {
		return syscall.EROFS
	}
	if size, ok := in.GetSize(); ok && int64(size) != n.c.Size() {
		return syscall.EPERM
	}
	if in.Valid&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID) != 0 {
		return syscall.EPERM
	}
	return n.Getattr(ctx, fh, out)
}

// readOnlyTree refuses every change to the tree with EROFS. On a
// read-only mount the kernel refuses them before they arrive; on a mount
// with an overlay they would otherwise get go-fuse's defaults, which for
// unlink and rmdir is success (and the node would vanish from the tree).
type readOnlyTree struct{}

func (readOnlyTree) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyTree) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyTree) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyTree) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyTree) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }
func (readOnlyTree) Rmdir(ctx context.Context, name string) syscall.Errno  { return syscall.EROFS }

func (readOnlyTree) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}
