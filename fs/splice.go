package fs

import (
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/splice"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/route"
)

// zeroFD is a memory file of maxRead zero bytes: holes are spliced from it,
// so a read of a sparse region costs no copy either.
var zeroFD = sync.OnceValues(func() (uintptr, bool) {
	fd, err := unix.MemfdCreate("ovfmount-zeros", unix.MFD_CLOEXEC)
	if err != nil {
		return 0, false
	}
	if err := unix.Ftruncate(fd, maxRead); err != nil {
		unix.Close(fd)
		return 0, false
	}
	return uintptr(fd), true
})

// minSplice is the smallest reply worth splicing. A splice costs a pipe,
// a header written into it and two system calls before the kernel copies a
// byte, which on small replies is more than the copy it saves: random
// 4 KiB reads took 40 us longer each, spliced, than read and written
// (a go-fuse server replying from memory, on 2 cores).
const minSplice = 64 << 10

// pipeSlots is how many page buffers a pipe of the default maximum size
// (fs.pipe-max-size, 1 MiB) holds; a reply must fit in it with its header
// and go-fuse's spare page, or the splice comes back short (see maxRead).
const pipeSlots = 1 << 20 / pageSize

// outHeaderSize is the FUSE reply header that precedes read data in the pipe.
const outHeaderSize = 16

// slots is how many pipe buffers splicing n bytes from file offset off
// takes: one per page touched.
func slots(off int64, n int) int {
	return (int(off%pageSize) + n + pageSize - 1) / pageSize
}

// replySlots is how many buffers the pipe go-fuse replies through is sure
// to hold for a read of size bytes. go-fuse grows it to the header, the
// data and one page; the kernel rounds that up to a power of two. It is a
// guarantee in bytes, not in buffers, so data that starts off a page
// boundary, or comes in several pieces, can need more buffers than the
// pipe has: the splice into it then comes back short, go-fuse sends the
// short reply, and the kernel takes it for the end of the file.
func replySlots(size int) int {
	n := pageSize
	for n < size+outHeaderSize+pageSize {
		n <<= 1
	}
	return min(n/pageSize, pipeSlots)
}

// spliceResult answers a read from file pieces without copying: one piece
// is spliced directly, several are gathered in a pipe first. ok is false
// when the pieces would not fit in the reply pipe, or the kernel refuses,
// and the caller then copies instead. Never may a splice come back short.
func spliceResult(ranges []route.Range, total int, log *zerolog.Logger, path string) (fuse.ReadResult, bool) {
	pieces := make([]route.Range, len(ranges))
	copy(pieces, ranges)
	data := 0
	for i, p := range pieces {
		if p.Zero {
			fd, ok := zeroFD()
			if !ok || p.Len > maxRead {
				return nil, false
			}
			pieces[i].FD, pieces[i].Off = fd, 0
		}
		data += slots(pieces[i].Off, p.Len)
	}
	// The header takes a buffer, and go-fuse's spare page is kept spare.
	if 1+data+1 > replySlots(total) {
		return nil, false
	}
	if len(pieces) == 1 {
		return &fdResult{fd: pieces[0].FD, off: pieces[0].Off, size: pieces[0].Len, log: log, path: path}, true
	}
	pair, err := splice.Get()
	if err != nil {
		return nil, false
	}
	// Sized in buffers: a pipe that filled up would block the load.
	if err := pair.Grow((data + 1) * pageSize); err != nil {
		splice.Done(pair)
		return nil, false
	}
	for _, p := range pieces {
		for done := 0; done < p.Len; {
			n, err := pair.LoadFromAt(p.FD, p.Len-done, p.Off+int64(done))
			if err != nil || n <= 0 {
				splice.Done(pair)
				return nil, false
			}
			done += n
		}
	}
	return fuse.ReadResultPipe(pair, total), true
}

// fdResult is a reply spliced from a file, like go-fuse's ReadResultFd,
// except when the splice fails: go-fuse then reads the file itself and
// replies with whatever errno that read gave (ENOTCONN from a vanished
// backing mount, say), or with a short reply, which the kernel takes for
// the end of the file. Here any failure of that read is EIO, logged once,
// as every read error is (see Errno).
type fdResult struct {
	fd   uintptr
	off  int64
	size int
	log  *zerolog.Logger
	path string
}

// Seekable is what go-fuse splices from.
func (r *fdResult) Seekable() (uintptr, int64, int) { return r.fd, r.off, r.size }
func (r *fdResult) Size() int                       { return r.size }
func (r *fdResult) Done()                           {}

// Bytes is go-fuse's fallback when the splice fails.
func (r *fdResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	if len(buf) < r.size {
		buf = make([]byte, r.size)
	}
	n, err := unix.Pread(int(r.fd), buf[:r.size], r.off)
	if err == nil && n < r.size {
		err = errShortRead
	}
	if err != nil {
		Errno(r.log, r.path, r.off, err)
		return nil, fuse.EIO
	}
	return buf[:n], fuse.OK
}

// bufsResult replies with a route's buffers as they are, by writev, and
// lets go of held ones once the reply is written (go-fuse calls Done after
// the write, or when the request ends without one).
type bufsResult struct{ r route.Reply }

func (b *bufsResult) Size() int { return b.r.Len() }
func (b *bufsResult) Done()     { b.r.Release() }

// Slices makes go-fuse write the buffers with writev, never splice.
func (b *bufsResult) Slices() ([][]byte, fuse.Status) { return b.r.Bufs, fuse.OK }

// Bytes is go-fuse's fallback: the buffers joined into one.
func (b *bufsResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, p := range b.r.Bufs {
		buf = append(buf, p...)
	}
	return buf, fuse.OK
}
