package fs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/ova"
)

var errShortRead = errors.New("short read from the archive")

// VirtualFile is a file that is not an archive member, such as the
// decoded raw view of a disk. Its folders are created as needed.
type VirtualFile struct {
	Path    string // slash-separated, relative to the mount root
	Content Content
	ModTime time.Time
}

// Options configure the tree.
type Options struct {
	UID, GID uint32    // owner of every node
	ModTime  time.Time // for nodes the archive gives no time (the archive file's mtime)
	Virtual  []VirtualFile
	// Integrity checks members against the manifest; nil serves them
	// unchecked.
	Integrity *ova.Integrity
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
	Log      zerolog.Logger
}

// Root is the root of the mount. Build it with [NewRoot] and pass it to
// [Mount].
type Root struct {
	dirNode
	a    *ova.Archive
	opts Options
}

// NewRoot builds the tree for an indexed package.
func NewRoot(a *ova.Archive, opts Options) (*Root, error) {
	for _, v := range opts.Virtual {
		if m, ok := a.Lookup(v.Path); ok && m.Name != "" {
			return nil, fmt.Errorf("fs: virtual file %q collides with an archive member", v.Path)
		}
	}
	r := &Root{a: a, opts: opts}
	root := a.Root()
	r.meta = meta{perm: uint32(root.Mode.Perm()), mtime: r.timeOf(root.ModTime), uid: opts.UID, gid: opts.GID}
	return r, nil
}

// OnAdd builds the whole tree once, as persistent inodes: the archive is
// immutable, so nothing is ever looked up lazily or forgotten.
func (r *Root) OnAdd(ctx context.Context) {
	ino := inodes{}
	dirs := map[string]*gofs.Inode{"": &r.Inode}
	dirNodes := map[string]*dirNode{"": &r.dirNode}
	add := func(parent, name string, node gofs.InodeEmbedder, mode uint32, key byte, path string) *gofs.Inode {
		p := dirs[parent]
		child := p.NewPersistentInode(ctx, node, gofs.StableAttr{Mode: mode, Ino: ino.forPath(key, path)})
		p.AddChild(name, child, true)
		return child
	}
	for _, m := range r.a.Members() {
		if m.Name == "" {
			continue
		}
		mt := meta{perm: uint32(m.Mode.Perm()), mtime: r.timeOf(m.ModTime), uid: r.opts.UID, gid: r.opts.GID}
		parent := parentOf(m.Name)
		switch m.Type {
		case ova.TypeDir:
			d := &dirNode{meta: mt}
			dirs[m.Name] = add(parent, m.Base(), d, syscall.S_IFDIR, 'm', m.Name)
			dirNodes[m.Name] = d
			dirNodes[parent].subdirs++
		case ova.TypeFile:
			add(parent, m.Base(), &fileNode{meta: mt, path: m.Name, c: contentOf(m, r.opts.Integrity), directIO: r.opts.DirectIO, log: &r.opts.Log}, syscall.S_IFREG, 'm', m.Name)
		case ova.TypeSymlink:
			add(parent, m.Base(), &symlinkNode{meta: mt, target: m.Linkname}, syscall.S_IFLNK, 'm', m.Name)
		}
	}
	for _, v := range r.opts.Virtual {
		// Virtual folders are dated like the root and readable by all.
		parts := strings.Split(v.Path, "/")
		for i := 1; i < len(parts); i++ {
			dir := strings.Join(parts[:i], "/")
			if dirs[dir] == nil {
				parent := parentOf(dir)
				d := &dirNode{meta: meta{perm: 0o755, mtime: r.mtime, uid: r.opts.UID, gid: r.opts.GID}}
				dirs[dir] = add(parent, parts[i-1], d, syscall.S_IFDIR, 'v', dir)
				dirNodes[dir] = d
				dirNodes[parent].subdirs++
			}
		}
		mt := meta{perm: 0o444, mtime: r.timeOf(v.ModTime), uid: r.opts.UID, gid: r.opts.GID}
		add(parentOf(v.Path), parts[len(parts)-1], &fileNode{meta: mt, path: v.Path, c: v.Content, directIO: r.opts.DirectIO, log: &r.opts.Log}, syscall.S_IFREG, 'v', v.Path)
	}
}

// timeOf replaces a missing time with the archive's.
func (r *Root) timeOf(t time.Time) time.Time {
	if t.IsZero() {
		return r.opts.ModTime
	}
	return t
}

// Statfs describes the archive: its size in blocks, none free, and one
// inode per node.
func (r *Root) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const bsize = 4096
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = uint64(r.a.Size()+bsize-1) / bsize
	out.Files = uint64(len(r.a.Members()) + len(r.opts.Virtual))
	out.NameLen = 255
	return 0
}

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}
