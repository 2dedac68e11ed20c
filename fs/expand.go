package fs

import (
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ovfmount/ovfmount/appliance"
)

// expander adds the entries of a folder that the plan finds only when the
// folder is first looked into (partitions, volumes, guest filesystems:
// reading a disk's tables waits for its checks, so it is not done at
// mount time).
type expander struct {
	root *Root
	path string
	fn   func(ctx context.Context) ([]*appliance.Entry, error)

	mu   sync.Mutex
	done bool
}

// expand runs fn until it succeeds once, and adds what it found. An error
// is answered as a read error would be (EIO, logged), and the next look
// tries again.
func (x *expander) expand(ctx context.Context) syscall.Errno {
	if x == nil {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done {
		return 0
	}
	entries, err := x.fn(ctx)
	if err != nil {
		return Errno(&x.root.opts.Log, x.path, 0, err)
	}
	x.root.mu.Lock()
	for _, e := range entries {
		x.root.add(ctx, e)
	}
	x.root.mu.Unlock()
	x.done = true
	return 0
}

// Lookup finds a child, once the folder has expanded.
func (n *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := n.exp.expand(ctx); errno != 0 {
		return nil, errno
	}
	child := n.GetChild(name)
	if child == nil {
		return nil, syscall.ENOENT
	}
	if ga, ok := child.Operations().(gofs.NodeGetattrer); ok {
		var a fuse.AttrOut
		if errno := ga.Getattr(ctx, nil, &a); errno != 0 {
			return nil, errno
		}
		out.Attr = a.Attr
	}
	return child, 0
}
