package fs

import (
	"context"
	"errors"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/appliance"
)

var errShortRead = errors.New("short read from the archive")

// Options configure the tree.
type Options struct {
	UID, GID uint32 // owner of every node
	// Signature is the root's user.ovfmount.signature attribute ("": none).
	Signature string
	// Size is the archive's size, which statfs reports.
	Size int64
	// DirectIO opens every regular file with FOPEN_DIRECT_IO: the kernel
	// sends each read(2) to the daemon as it is and keeps no page cache
	// for the mount. Large sequential reads get faster, because the kernel
	// no longer copies every byte into freshly allocated cache pages; small
	// reads each become a round trip, and nothing is cached between reads.
	// Mappings still work: [Mount] negotiates FUSE_DIRECT_IO_ALLOW_MMAP, so
	// a shared one is served through the page cache (private ones always
	// were); a kernel older than 6.6 refuses shared ones with ENODEV, and
	// Mount logs a warning. Off by default.
	DirectIO bool
	// Writable mounts the tree read-write, for a package with an overlay:
	// the files whose content is appliance.Writable take writes, and
	// nothing else changes (see write.go).
	Writable bool
	// Observer, when set, is told of every open and every read served
	// before its bytes are given out (a read audit log); nil costs
	// nothing. See [Observer].
	Observer Observer
	Log      zerolog.Logger
}

// Root is the root of the mount. Build it with [NewRoot] and pass it to
// [Mount].
type Root struct {
	dirNode
	entries []*appliance.Entry
	opts    Options

	// mu guards what building nodes uses, at mount and when a folder
	// expands.
	mu       sync.Mutex
	ino      inodes
	dirs     map[string]*gofs.Inode
	dirNodes map[string]*dirNode
}

// NewRoot builds the tree that serves a package's plan: its entries, sorted
// by path, the root ("") first (see appliance.Package.Entries).
func NewRoot(entries []*appliance.Entry, opts Options) *Root {
	r := &Root{entries: entries, opts: opts}
	r.meta = meta{perm: 0o755, uid: opts.UID, gid: opts.GID}
	if len(entries) > 0 && entries[0].Path == "" {
		r.meta.perm, r.meta.mtime = uint32(entries[0].Perm), entries[0].ModTime
	}
	return r
}

// OnAdd builds the tree the plan lists, once, as persistent inodes: the
// package is immutable, so nothing is ever looked up twice or forgotten.
// Folders whose entries are found later (Entry.Expand) add them the same
// way when first looked into; guest filesystems are looked up lazily, and
// their inodes forgotten when the kernel lets go of them.
func (r *Root) OnAdd(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ino = inodes{}
	r.dirs = map[string]*gofs.Inode{"": &r.Inode}
	r.dirNodes = map[string]*dirNode{"": &r.dirNode}
	for _, e := range r.entries {
		if e.Path != "" {
			r.add(ctx, e)
		}
	}
}

// add makes the node of one entry, under its folder, which must already be
// there. r.mu is held.
func (r *Root) add(ctx context.Context, e *appliance.Entry) {
	parent := parentOf(e.Path)
	p, pd := r.dirs[parent], r.dirNodes[parent]
	if p == nil || p.GetChild(baseOf(e.Path)) != nil {
		return // the plan lists every folder before what it holds, and each path once
	}
	mt := meta{perm: uint32(e.Perm), mtime: e.ModTime, uid: r.opts.UID, gid: r.opts.GID}
	key := byte('m')
	if e.Member == nil {
		key = 'v'
	}
	var node gofs.InodeEmbedder
	var mode uint32
	switch {
	case e.Type == appliance.Dir && e.Guest != nil:
		t := newGuestTree(e.Guest, e.Path, r)
		node, mode = t.rootNode(), syscall.S_IFDIR
		pd.subdirs++
	case e.Type == appliance.Dir:
		d := &dirNode{meta: mt, attrs: e.Attrs}
		if e.Expand != nil {
			d.exp = &expander{root: r, path: e.Path, fn: e.Expand}
		}
		node, mode = d, syscall.S_IFDIR
		r.dirNodes[e.Path] = d
		pd.subdirs++
	case e.Type == appliance.Symlink:
		node, mode = &symlinkNode{meta: mt, target: e.Target}, syscall.S_IFLNK
	default:
		node, mode = &fileNode{meta: mt, path: e.Path, c: e.Content, directIO: r.opts.DirectIO, writable: r.opts.Writable,
			obs: r.opts.Observer, log: &r.opts.Log}, syscall.S_IFREG
	}
	child := p.NewPersistentInode(ctx, node, gofs.StableAttr{Mode: mode, Ino: r.ino.forPath(key, e.Path)})
	p.AddChild(baseOf(e.Path), child, true)
	if e.Type == appliance.Dir && e.Guest == nil {
		r.dirs[e.Path] = child
	}
}

// Statfs describes the archive: its size in blocks, none free, and one
// inode per node.
func (r *Root) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const bsize = 4096
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = uint64(r.opts.Size+bsize-1) / bsize
	out.Files = uint64(len(r.entries))
	out.NameLen = 255
	return 0
}

func parentOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[:i]
		}
	}
	return ""
}

func baseOf(name string) string {
	if p := parentOf(name); p != "" {
		return name[len(p)+1:]
	}
	return name
}
