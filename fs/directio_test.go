package fs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/internal/testutil"
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
// again when it is repeated (the page cache would answer it). A shared
// mapping must work too (Mount negotiates FUSE_DIRECT_IO_ALLOW_MMAP, which
// Linux grants from 6.6) and hold what read(2) returns.
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

	whole := make([]byte, len(content.data)+1)
	k, err := unix.Pread(int(f.Fd()), whole, 0)
	if err != nil || !bytes.Equal(whole[:k], content.data) {
		t.Fatalf("read(2) of the whole file: %d bytes, %v; want the content's %d", k, err, len(content.data))
	}
	m, err := unix.Mmap(int(f.Fd()), 0, len(content.data), unix.PROT_READ, unix.MAP_SHARED)
	if errors.Is(err, unix.ENODEV) && !testutil.KernelAtLeast(t, 6, 6) {
		t.Skip("shared mmap of a direct-I/O file needs Linux 6.6 (FUSE_DIRECT_IO_ALLOW_MMAP)")
	}
	if err != nil {
		t.Fatalf("shared mmap of a direct-I/O file: %v", err)
	}
	defer unix.Munmap(m)
	// The mapping is read by write(2) into a file, so that its page faults
	// are taken inside a system call: a goroutine faulting on our own mount
	// in user space could not be stopped by the garbage collector, which
	// would then stop the goroutines that answer the fault.
	copied, err := os.CreateTemp(t.TempDir(), "mapped")
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	if n, err := copied.Write(m); err != nil || n != len(m) {
		t.Fatalf("copying the mapping: %d bytes, %v", n, err)
	}
	got, err := os.ReadFile(copied.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, whole[:k]) {
		t.Errorf("the shared mapping differs from read(2) at byte %d", firstDiffAt(got, whole[:k]))
	}
}

// firstDiffAt is the offset of the first byte where a and b differ.
func firstDiffAt(a, b []byte) int {
	i := 0
	for i < min(len(a), len(b)) && a[i] == b[i] {
		i++
	}
	return i
}
