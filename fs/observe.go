package fs

import (
	"context"
	"fmt"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Observer is told of every open of a regular file on the mount and of
// every read served from it, before the read's bytes are given out: what a
// read audit log needs (see package audit). It holds the policy; fs only
// calls it where files are opened, read and released, for the plan's
// files and the guest files under files/ alike, whether the reply is
// spliced, written from held buffers or copied.
//
// With an Observer the mount answers every OPEN (rather than ENOSYS, see
// openReply) so that each open is seen with its caller and released, and
// without FOPEN_KEEP_CACHE, so that the kernel drops a file's cached pages
// at each open: one open's reads then reach the daemon instead of being
// answered from pages another open read. Small files are not stored ahead
// into the page cache (fileahead.go): only what a reader's request asked
// for is served. Directory listings, attributes and link targets are not
// reads of a file's content and are not observed.
type Observer interface {
	// Open is called as who opens the file at path (the mount's path). An
	// error fails the open with EIO.
	Open(path string, who Caller) (Observed, error)
}

// Observed is one open file, as its Observer follows it.
type Observed interface {
	// Read is called with the range about to be served to who; an error
	// fails the read with EIO, and none of its bytes are given out.
	Read(off int64, n int, who Caller) error
	// Release is called once, when the kernel releases the open file (its
	// last descriptor closed and its last mapping gone).
	Release()
}

// Caller is the process whose request is served, as the kernel gave it in
// the FUSE request: pid 0 for one the kernel made on its own behalf.
type Caller struct {
	Pid, Uid, Gid uint32
}

func callerOf(ctx context.Context) Caller {
	if c, ok := ctx.(*fuse.Context); ok {
		return Caller{Pid: c.Pid, Uid: c.Uid, Gid: c.Gid}
	}
	return Caller{}
}

// observedHandle is the handle of a plan file opened on a mount with an
// Observer; view is its handle for writing, if it was opened so.
type observedHandle struct {
	o    Observed
	view *viewHandle
}

var _ gofs.FileReleaser = (*observedHandle)(nil)

func (h *observedHandle) Release(ctx context.Context) syscall.Errno {
	h.o.Release()
	return 0
}

// observedOpen adapts an open's reply to an Observer: an OPEN that would
// be answered ENOSYS is answered, and the page cache is dropped at open
// (see Observer).
func observedOpen(reply uint32, errno syscall.Errno) (uint32, syscall.Errno) {
	if errno == syscall.ENOSYS {
		return fuse.FOPEN_NOFLUSH, 0
	}
	return reply &^ fuse.FOPEN_KEEP_CACHE, errno
}

// observe tells the Observer, if there is one, of a read of n bytes at off
// of a file about to be served through handle fh. A read that comes
// without an observed handle (the kernel sent none) is observed as an
// open of path(), a read and a release of its own.
func observe(ctx context.Context, obs Observer, fh gofs.FileHandle, path func() string, off int64, n int) error {
	if obs == nil {
		return nil
	}
	who := callerOf(ctx)
	var o Observed
	switch h := fh.(type) {
	case *observedHandle:
		o = h.o
	case *guestFile:
		o = h.o
	}
	if o == nil {
		var err error
		if o, err = obs.Open(path(), who); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		defer o.Release()
	}
	if err := o.Read(off, n, who); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
