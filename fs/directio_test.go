package fs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// readLog is content that records every read that reaches it.
type readLog struct {
	data  []byte
	mu    sync.Mutex
	reads [][2]int64 // offset, length
}

func (r *readLog) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.reads = append(r.reads, [2]int64{off, int64(len(p))})
	r.mu.Unlock()
	return copy(p, r.data[off:]), nil
}

func (r *readLog) Size() int64 { return int64(len(r.data)) }

func (r *readLog) content() *readerContent { return &readerContent{r: r, size: r.Size()} }

// count is how many reads of exactly n bytes at off reached the content.
func (r *readLog) count(off, n int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for _, rd := range r.reads {
		if rd == [2]int64{off, n} {
			k++
		}
	}
	return k
}

// TestMountDirectIO checks that with Options.DirectIO the kernel's page
// cache is bypassed: a read reaches the daemon at the reader's offset and
// size (the page cache would round them to pages and read ahead), and
// again when it is repeated (the page cache would answer it). It also pins
// a trade-off the README states: a shared mapping is refused with ENODEV.
// (That a private mapping works is checked in package integration, with
// the daemon in a process of its own: here, a page fault on our own mount
// can stall the garbage collector's stop-the-world, and with it the
// goroutines that would answer the fault.)
func TestMountDirectIO(t *testing.T) {
	p, _ := testPackage(t, map[string][]byte{"appliance.ovf": []byte("<Envelope/>")})
	content := &readLog{data: randomBytes(1<<20+333, 9)}
	mnt := testMountWith(t, withFile(p.Entries, "disks/d.raw", content.content()), Options{DirectIO: true})
	f, err := os.Open(filepath.Join(mnt, "disks/d.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	const off, n = 12345, 100000
	for i := 1; i <= 2; i++ {
		buf := make([]byte, n)
		k, err := unix.Pread(int(f.Fd()), buf, off)
		if err != nil || k != n || !bytes.Equal(buf, content.data[off:off+n]) {
			t.Fatalf("read %d: %d bytes, %v; want the content's %d", i, k, err, n)
		}
		if got := content.count(off, n); got != i {
			t.Fatalf("after %d read(s) of %d bytes at %d, the content saw %d such reads; want %d (reads: %v)", i, n, off, got, i, content.reads)
		}
	}

	if m, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_SHARED); !errors.Is(err, syscall.ENODEV) {
		if err == nil {
			unix.Munmap(m)
		}
		t.Errorf("shared mmap: %v, want ENODEV (if go-fuse now negotiates FUSE_DIRECT_IO_ALLOW_MMAP, update the README on direct_io)", err)
	}
}
