package fs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/guestfs"
)

// guestTree serves one guest filesystem under files/. Its nodes are made
// as the kernel looks names up and forgotten when it lets go of them: a
// guest holds far more files than a package, and most are never visited.
type guestTree struct {
	t    *appliance.GuestTree
	path string // where its root is in the mount
	root *Root
	seed uint64 // mixed into inode numbers, so that volumes never share one
	// files keeps the files read lately open, for reads without a handle
	// (see openReply).
	files openFiles
	// ahead stores small files ahead of readers that read a folder's
	// files in turn.
	ahead *fileAhead
}

func newGuestTree(t *appliance.GuestTree, path string, r *Root) *guestTree {
	h := fnv.New64a()
	h.Write([]byte{'g'})
	h.Write([]byte(path))
	g := &guestTree{t: t, path: path, root: r, seed: h.Sum64(), files: newOpenFiles(openFilesKept)}
	g.ahead = newFileAhead(g)
	return g
}

// ino is the mount's inode number of a guest inode: the guest's number
// mixed with the volume's, so that hard links share it, a file keeps it
// across mounts, and two volumes' files never collide (short of a 64-bit
// hash collision). 0 and 1 are never handed out.
func (g *guestTree) ino(guest uint64) uint64 {
	x := g.seed ^ (guest * 0x9E3779B97F4A7C15)
	x ^= x >> 31
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 29
	if x <= 1 {
		x += 2
	}
	return x
}

func (g *guestTree) rootNode() *guestNode {
	return &guestNode{g: g, gino: g.t.FS.Root()}
}

// guestNode is any file of a guest filesystem: which interfaces apply
// depends on its type, as the kernel asks only what fits it. It holds no
// more than the guest's inode number: the kernel keeps a node for every
// name it has seen (a walk of 50,000 files keeps 50,000), so what a read
// needs is opened again when needed (see openFiles).
type guestNode struct {
	gofs.Inode
	readOnlyTree
	g    *guestTree
	gino uint64 // the guest's inode number
}

var (
	_ gofs.NodeGetattrer      = (*guestNode)(nil)
	_ gofs.NodeLookuper       = (*guestNode)(nil)
	_ gofs.NodeOpendirHandler = (*guestNode)(nil)
	_ gofs.NodeOpener         = (*guestNode)(nil)
	_ gofs.NodeReader         = (*guestNode)(nil)
	_ gofs.NodeLseeker        = (*guestNode)(nil)
	_ gofs.NodeReadlinker     = (*guestNode)(nil)
	_ gofs.NodeGetxattrer     = (*guestNode)(nil)
	_ gofs.NodeListxattrer    = (*guestNode)(nil)
	_ gofs.NodeFsyncer        = (*guestNode)(nil)
	_ gofs.FileReaddirenter   = (*guestDirHandle)(nil)
	_ gofs.FileLookuper       = (*guestDirHandle)(nil)
	_ gofs.FileSeekdirer      = (*guestDirHandle)(nil)
	_ gofs.FileReleasedirer   = (*guestDirHandle)(nil)
	_ gofs.NodeStatfser       = (*guestNode)(nil)
	_ gofs.InodeEmbedder      = (*guestNode)(nil)
)

// errno maps an error, naming the file by the path the kernel knows it by.
func (n *guestNode) errno(off int64, err error) syscall.Errno {
	return guestErrno(&n.g.root.opts.Log, n.Path(nil), off, err)
}

// fillAttr shows the guest's own attributes: its owners, mode, times and
// link count, not the mounting user's.
func fillAttr(out *fuse.Attr, a *guestfs.Attr, ino uint64) {
	out.Ino = ino
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	if out.Nlink == 0 {
		out.Nlink = 1
	}
	out.Uid, out.Gid = a.Uid, a.Gid
	out.Size = uint64(max(a.Size, 0))
	alloc := a.Blocks
	if alloc < 0 {
		alloc = max(a.Size, 0)
	}
	out.Blocks = uint64(alloc+511) / 512
	out.Blksize = 4096
	out.Rdev = uint32(a.Rdev)
	set := func(t time.Time, sec *uint64, nsec *uint32) {
		if !t.IsZero() {
			*sec, *nsec = uint64(t.Unix()), uint32(t.Nanosecond())
		}
	}
	set(a.Atime, &out.Atime, &out.Atimensec)
	set(a.Mtime, &out.Mtime, &out.Mtimensec)
	set(a.Ctime, &out.Ctime, &out.Ctimensec)
}

func (n *guestNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := n.g.t.FS.Stat(n.gino)
	if err != nil {
		return n.errno(0, err)
	}
	fillAttr(&out.Attr, &a, n.g.ino(n.gino))
	return 0
}

// child makes (or finds, for a hard link) the node of a guest inode.
func (n *guestNode) child(ctx context.Context, name string, gino uint64, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, err := n.g.t.FS.Stat(gino)
	if err != nil {
		return nil, n.errno(0, err)
	}
	ino := n.g.ino(gino)
	fillAttr(&out.Attr, &a, ino)
	c := &guestNode{g: n.g, gino: gino}
	return n.NewInode(ctx, c, gofs.StableAttr{Mode: a.Mode & guestfs.TypeMask, Ino: ino}), 0
}

func (n *guestNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	e, err := n.g.t.FS.Lookup(n.gino, name)
	if err != nil {
		return nil, n.errno(0, err)
	}
	return n.child(ctx, name, e.Ino, out)
}

func (n *guestNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	// The directory never changes, so the kernel may keep what it read.
	return &guestDirHandle{n: n}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *guestNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	reply, errno := openReply(flags, n.g.root.opts.DirectIO, n.g.root.opts.Writable)
	obs := n.g.root.opts.Observer
	if obs != nil {
		reply, errno = observedOpen(reply, errno)
	}
	if errno != 0 {
		return nil, 0, errno
	}
	f, err := n.g.files.open(n.g.t.FS, n.gino)
	if err != nil {
		return nil, 0, n.errno(0, err)
	}
	h := &guestFile{f: f}
	if obs != nil {
		if h.o, err = obs.Open(n.mountPath(), callerOf(ctx)); err != nil {
			return nil, 0, n.errno(0, fmt.Errorf("audit: %w", err))
		}
	}
	return h, reply, 0
}

// mountPath is the file's path in the mount, by the name the kernel knows
// it by (a hard link has several).
func (n *guestNode) mountPath() string { return n.Path(nil) }

// guestFile is a guest file opened by open(2), on a mount where the kernel
// sends OPEN (see openReply); elsewhere reads find the file through the
// tree's open files. o follows it on a mount with an Observer.
type guestFile struct {
	f guestfs.File
	o Observed
}

var _ gofs.FileReleaser = (*guestFile)(nil)

func (h *guestFile) Release(ctx context.Context) syscall.Errno {
	if h.o != nil {
		h.o.Release()
	}
	return 0
}

// file is the guest file a read or seek is about: the handle's, or the one
// the tree keeps open.
func (n *guestNode) file(fh gofs.FileHandle) (guestfs.File, syscall.Errno) {
	if h, ok := fh.(*guestFile); ok {
		return h.f, 0
	}
	f, err := n.g.files.open(n.g.t.FS, n.gino)
	if err != nil {
		return nil, n.errno(0, err)
	}
	return f, 0
}

func (n *guestNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f, errno := n.file(fh)
	if errno != 0 {
		return nil, errno
	}
	size := f.Size()
	if off < 0 || off >= size {
		return fuse.ReadResultData(nil), 0
	}
	want := int(min(int64(len(dest)), size-off))
	k, err := f.ReadAt(dest[:want], off)
	if k == want {
		err = nil
	} else if err == nil || err == io.EOF {
		err = errShortRead
	}
	if obs := n.g.root.opts.Observer; err == nil && obs != nil {
		err = observe(ctx, obs, fh, n.mountPath, off, want)
	}
	if err != nil {
		return nil, n.errno(off, err)
	}
	// With direct I/O the kernel would not look in its page cache; with
	// an Observer, only what readers ask for is served.
	if off == 0 && want == int(size) && size <= aheadFileMax && !n.g.root.opts.DirectIO && n.g.root.opts.Observer == nil {
		n.g.ahead.read(n)
	}
	// A vector result goes straight to writev; a data result would first
	// try a splice (see fileNode.Read), costing every guest file's read
	// a pipe and three system calls more.
	return fuse.ReadResultVector([][]byte{dest[:want]}), 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE from the guest's own map of the
// file, where the filesystem keeps one.
func (n *guestNode) Lseek(ctx context.Context, fh gofs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	const seekData, seekHole = 3, 4
	f, errno := n.file(fh)
	if errno != 0 {
		return 0, errno
	}
	if int64(off) >= f.Size() {
		return 0, syscall.ENXIO
	}
	sp, _ := f.(guestfs.Sparse)
	switch whence {
	case seekData:
		if sp == nil {
			return off, 0
		}
		next, ok, err := sp.NextData(int64(off))
		if err != nil {
			return 0, n.errno(int64(off), err)
		}
		if !ok {
			return 0, syscall.ENXIO
		}
		return uint64(next), 0
	case seekHole:
		if sp == nil {
			return uint64(f.Size()), 0
		}
		next, err := sp.NextHole(int64(off))
		if err != nil {
			return 0, n.errno(int64(off), err)
		}
		return uint64(next), 0
	}
	return 0, syscall.EINVAL
}

func (n *guestNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.g.t.FS.Readlink(n.gino)
	if err != nil {
		return nil, n.errno(0, err)
	}
	return []byte(t), 0
}

// Fsync succeeds, as on every node of the mount.
func (n *guestNode) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

// Statfs describes the guest filesystem: its size, none of it free.
func (n *guestNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	info := n.g.t.FS.Info()
	bs := uint64(max(info.BlockSize, 512))
	out.Bsize, out.Frsize = uint32(bs), uint32(bs)
	out.Blocks = uint64(info.Size) / bs
	out.NameLen = 255
	return 0
}

// guestDirHandle streams a guest directory to the kernel without holding
// it: a directory of a million names costs dirAhead entries of memory. The
// filesystem's ReadDir pushes entries; a goroutine hands them over through
// a channel that holds dirAhead of them, so that a READDIRPLUS (a few dozen
// entries) mostly takes what is listed already instead of waiting for the
// lister to be scheduled once per entry.
type guestDirHandle struct {
	n *guestNode

	pos    uint64 // entries handed out, "." and ".." included
	ents   chan guestfs.DirEntry
	errc   chan error
	stop   chan struct{}
	recent map[string]guestfs.DirEntry // what readdirplus is about to look up
}

func (h *guestDirHandle) start() {
	h.ents = make(chan guestfs.DirEntry, dirAhead)
	h.errc = make(chan error, 1)
	h.stop = make(chan struct{})
	ents, errc, stop := h.ents, h.errc, h.stop
	fsys, ino := h.n.g.t.FS, h.n.gino
	go func() {
		errc <- fsys.ReadDir(ino, func(e guestfs.DirEntry) error {
			select {
			case ents <- e:
				return nil
			case <-stop:
				return errStopped
			}
		})
		close(ents)
	}()
}

var errStopped = errors.New("directory listing stopped")

// dirAhead is how many entries a directory's lister may run ahead of the
// kernel's reads: about two READDIRPLUS replies.
const dirAhead = 64

func (h *guestDirHandle) halt() {
	if h.stop != nil {
		close(h.stop)
		for range h.ents {
		}
		h.stop = nil
	}
}

func (h *guestDirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	self := h.n.EmbeddedInode()
	switch h.pos {
	case 0:
		h.pos++
		return &fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: self.StableAttr().Ino, Off: h.pos}, 0
	case 1:
		h.pos++
		ino := self.StableAttr().Ino
		if _, p := self.Parent(); p != nil {
			ino = p.StableAttr().Ino
		}
		return &fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: ino, Off: h.pos}, 0
	}
	if h.stop == nil {
		h.start()
	}
	// Interrupts are ignored: the wait is for one entry of the lister's
	// disk reads, and a listing must not fail part-way through a reply.
	// go-fuse v2.12.1 keeps such an error and from then on answers with it
	// the first entry of each later reply, which is dropped
	// (readDirMaybeLookup never clears overflowErrno): one name per reply
	// vanished, with no error. Signals are common (the Go runtime preempts
	// its threads with SIGURG): a Go program lost 420 of 17,652 names of
	// a real man1 folder. TestGuestListingSurvivesInterrupt.
	e, ok := <-h.ents
	if !ok {
		if err := <-h.errc; err != nil {
			h.errc <- err // every later call fails the same way
			return nil, h.n.errno(0, err)
		}
		h.errc <- nil
		return nil, 0
	}
	h.pos++
	if h.recent == nil || len(h.recent) >= 256 {
		h.recent = map[string]guestfs.DirEntry{}
	}
	h.recent[e.Name] = e
	return &fuse.DirEntry{Name: e.Name, Mode: e.Type, Ino: h.n.g.ino(e.Ino), Off: h.pos}, 0
}

// Lookup answers readdirplus for a name just listed, from the inode the
// listing gave, so that a directory without an index is not searched once
// per name.
func (h *guestDirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e, ok := h.recent[name]; ok {
		return h.n.child(ctx, name, e.Ino, out)
	}
	return h.n.Lookup(ctx, name, out)
}

// Seekdir restarts the listing and skips to off: offsets count entries.
func (h *guestDirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.halt()
	h.pos, h.recent = 0, nil
	for h.pos < off {
		e, errno := h.Readdirent(ctx)
		if errno != 0 {
			return errno
		}
		if e == nil {
			break
		}
	}
	return 0
}

func (h *guestDirHandle) Releasedir(ctx context.Context, releaseFlags uint32) { h.halt() }
