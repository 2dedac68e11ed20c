package fs

import (
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/splice"
	"golang.org/x/sys/unix"
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

// pipeSlots is how many page buffers a pipe of the default maximum size
// (fs.pipe-max-size, 1 MiB) holds; a reply must fit in it with its header
// and go-fuse's spare page, or the splice comes back short (see maxRead).
const pipeSlots = 1 << 20 / pageSize

// slots is how many pipe buffers splicing n bytes from file offset off
// takes: one per page touched.
func slots(off int64, n int) int {
	return (int(off%pageSize) + n + pageSize - 1) / pageSize
}

// spliceResult answers a read from file pieces without copying: one piece
// is spliced directly, several are gathered in a pipe first. ok is false
// when the pieces would not fit in a pipe, or the kernel refuses, and the
// caller then copies instead. Never may a splice come back short: the
// kernel would take a short reply for the end of the file.
func spliceResult(pieces []FilePiece, total int) (fuse.ReadResult, bool) {
	need := 2 // the reply header, and the spare page go-fuse grows the pipe by
	for _, p := range pieces {
		need += slots(p.Off, p.Len)
	}
	if need > pipeSlots {
		return nil, false
	}
	if len(pieces) == 1 {
		return fuse.ReadResultFd(pieces[0].FD, pieces[0].Off, pieces[0].Len), true
	}
	pair, err := splice.Get()
	if err != nil {
		return nil, false
	}
	if err := pair.Grow(total); err != nil {
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
