package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// openReply decides every open(2) of a file on the mount: it refuses
// writing with EROFS, and gives the reply's flags, or ENOSYS.
//
// Without direct I/O the reply is ENOSYS, which is not a failure: it tells
// the kernel (FUSE_NO_OPEN_SUPPORT, Linux 3.14 and later) that this
// filesystem needs no OPEN, so it lets the open(2) succeed and from then on
// sends no OPEN, FLUSH or RELEASE for any file of the mount; reads arrive
// without a handle and each node serves them alone. A file opened that way
// keeps the kernel's cached pages across opens (the content never
// changes, and was checked, where checks apply, when it was read). Reading
// a tree of small guest files took three round trips per file (open, read,
// close) and now takes one.
//
// With directIO (-o direct_io) the kernel must be told so at each open: it
// then passes reads through as they are, instead of also copying every
// byte into freshly allocated page-cache pages, the copy that limits large
// sequential reads of decoded views. What it costs (a round trip per read,
// no caching, no shared mmap) is the mounter's choice; see
// Options.DirectIO. Nothing is ever written, so close(2) has nothing to
// wait for: FOPEN_NOFLUSH spares it the FLUSH round trip (Linux 5.16 and
// later; an older kernel ignores the flag and sends FLUSH, answered at
// once).
//
// On a mount that takes writes (Options.Writable) OPEN is always answered:
// an ENOSYS would stop the kernel from sending it for the writable views
// too, whose opens must be seen (O_SYNC and O_DIRECT make every write
// durable; see write.go).
func openReply(flags uint32, directIO, writable bool) (uint32, syscall.Errno) {
	if isWrite(flags) {
		return 0, syscall.EROFS
	}
	switch {
	case directIO:
		return fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH, 0
	case writable:
		return fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH, 0
	}
	return 0, syscall.ENOSYS
}

// isWrite reports whether open(2) flags ask to change the file.
func isWrite(flags uint32) bool {
	return flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0
}

// flushReply answers FLUSH, which close(2) sends for a file opened without
// a handle: ENOSYS has the kernel stop sending it on this mount (there is
// never anything to write back), sparing every later close(2) a round
// trip.
const flushReply = syscall.ENOSYS

// Flush: see flushReply.
func (n *fileNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno { return flushReply }

// Flush: see flushReply.
func (n *guestNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno { return flushReply }
