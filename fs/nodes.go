package fs

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/appliance"
)

// meta is what every node reports in getattr.
type meta struct {
	perm     uint32
	mtime    time.Time
	uid, gid uint32
}

func (m *meta) fill(out *fuse.Attr, mode uint32) {
	// go-fuse recomputes st_blocks from the size unless st_blksize is set,
	// which would hide holes from du and cp --sparse.
	out.Blksize = 4096
	out.Mode = mode | m.perm
	out.Uid, out.Gid = m.uid, m.gid
	t := m.mtime
	out.SetTimes(&t, &t, &t)
}

// dirNode is a directory: an archive directory (explicit or implied), or a
// virtual one such as the folder of decoded disks.
type dirNode struct {
	gofs.Inode
	readOnlyTree
	meta
	subdirs uint32
	exp     *expander                // nil unless entries are added on first look
	attrs   func() map[string]string // its extended attributes; nil: none
}

func (n *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr, syscall.S_IFDIR)
	if n.exp != nil {
		// Its folders are not known before it expands, which a stat must
		// not wait for: 1 says "not counted", as btrfs does, and find
		// then looks into every entry. (Its count of folders grows while
		// it expands, so it is not read here.)
		out.Nlink = 1
		return 0
	}
	out.Nlink = 2 + n.subdirs
	return 0
}

// Fsync succeeds: nothing here is ever dirty. Tools that only read still
// sync what they opened (partx, blkid, sfdisk on an image file), and
// would report ENOTSUP as a failed write.
func (n *dirNode) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

// Readdir lists the children in name order, after "." and "..", which
// go-fuse leaves out but ls -a and some scripts expect.
func (n *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	if errno := n.exp.expand(ctx); errno != 0 {
		return nil, errno
	}
	children := n.Children()
	names := make([]string, 0, len(children))
	for name := range children {
		names = append(names, name)
	}
	sort.Strings(names)
	self := n.EmbeddedInode()
	parentIno := self.StableAttr().Ino
	if _, p := self.Parent(); p != nil {
		parentIno = p.StableAttr().Ino
	}
	out := make([]fuse.DirEntry, 0, len(names)+2)
	out = append(out,
		fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: self.StableAttr().Ino},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: parentIno})
	for _, name := range names {
		c := children[name]
		out = append(out, fuse.DirEntry{Name: name, Mode: c.Mode(), Ino: c.StableAttr().Ino})
	}
	return gofs.NewListDirStream(out), 0
}

// fileNode is a regular file.
type fileNode struct {
	gofs.Inode
	meta
	path     string
	c        appliance.Content
	directIO bool // open with FOPEN_DIRECT_IO: see Options.DirectIO
	writable bool // the mount takes writes (Options.Writable): see write.go
	obs      Observer
	log      *zerolog.Logger
	// opened tells the content, once, that the file is in use (it starts
	// a lazy mount's verification of it): at the first open the kernel
	// sends, or the first read, as most opens reach no node (see
	// openReply).
	opened sync.Once
}

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr, syscall.S_IFREG)
	out.Nlink = 1
	out.Size = uint64(n.c.Size())
	out.Blocks = uint64(n.c.Allocated()+511) / 512
	return 0
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	var fh gofs.FileHandle
	var reply uint32
	var errno syscall.Errno
	if isWrite(flags) {
		fh, reply, errno = n.writeOpen(flags)
		if errno == 0 {
			n.opened.Do(n.c.Opened)
		}
	} else {
		reply, errno = openReply(flags, n.directIO, n.writable)
		n.opened.Do(n.c.Opened)
	}
	if n.obs == nil {
		return fh, reply, errno
	}
	if reply, errno = observedOpen(reply, errno); errno != 0 {
		return nil, 0, errno
	}
	o, err := n.obs.Open(n.path, callerOf(ctx))
	if err != nil {
		return nil, 0, Errno(n.log, n.path, 0, fmt.Errorf("audit: %w", err))
	}
	view, _ := fh.(*viewHandle)
	return &observedHandle{o: o, view: view}, reply, 0
}

func (n *fileNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n.opened.Do(n.c.Opened)
	size := n.c.Size()
	if off >= size || off < 0 {
		return fuse.ReadResultData(nil), 0
	}
	want := int(min(int64(len(dest)), size-off))
	splice := want >= minSplice
	r, err := n.c.Read(ctx, dest[:want], off, splice)
	if err == nil && n.obs != nil {
		// Recorded before any byte is given out; a reply that fails
		// after this stays recorded (the log may hold more than was
		// delivered, never less).
		if err = observe(ctx, n.obs, fh, n.pathOf, off, want); err != nil {
			r.Release()
		}
	}
	if err == nil && r.Ranges != nil {
		if res, ok := spliceResult(r.Ranges, want, n.log, n.path); ok {
			return res, 0
		}
		// The ranges do not fit the reply pipe: copy them instead.
		r, err = n.c.Read(ctx, dest[:want], off, false)
	}
	if err == nil && r.Len() != want {
		r.Release()
		err = errShortRead
	}
	if err != nil {
		return nil, Errno(n.log, n.path, off, err)
	}
	// A vector result, not ReadResultData: with splice enabled go-fuse
	// tries to splice a data result first, which costs a pipe, a header
	// written into it and a pipe resize before it falls back to writev; a
	// vector result goes straight to writev. On random 4 KiB reads of a
	// decoded disk that detour was a tenth of the daemon's time. Buffers
	// held by the reply (checked chunks) are let go once it is written.
	return &bufsResult{r}, 0
}

func (n *fileNode) pathOf() string { return n.path }

// Lseek answers SEEK_DATA and SEEK_HOLE (the kernel handles the other
// whence values itself), so that cp --sparse and qemu-img skip holes.
func (n *fileNode) Lseek(ctx context.Context, fh gofs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	const seekData, seekHole = 3, 4
	size := n.c.Size()
	if int64(off) >= size {
		return 0, syscall.ENXIO
	}
	switch whence {
	case seekData:
		next, found, err := n.c.NextData(int64(off))
		if err != nil {
			return 0, Errno(n.log, n.path, int64(off), err)
		}
		if !found {
			return 0, syscall.ENXIO
		}
		return uint64(next), 0
	case seekHole:
		next, err := n.c.NextHole(int64(off))
		if err != nil {
			return 0, Errno(n.log, n.path, int64(off), err)
		}
		return uint64(next), 0
	}
	return 0, syscall.EINVAL
}

// symlinkNode is a symlink, served exactly as stored and never followed
// by ovfmount.
type symlinkNode struct {
	gofs.Inode
	meta
	target string
}

func (n *symlinkNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr, syscall.S_IFLNK)
	out.Nlink = 1
	out.Size = uint64(len(n.target))
	return 0
}

func (n *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(n.target), 0
}
