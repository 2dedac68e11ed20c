package fs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// readAll reads a file node the way the kernel would: in max_read requests.
func readNode(t *testing.T, n *fileNode, off int64, size int) []byte {
	t.Helper()
	res, errno := n.Read(context.Background(), nil, make([]byte, size), off)
	if errno != 0 {
		t.Fatalf("Read(%d, %d): %v", off, size, errno)
	}
	b, st := res.Bytes(make([]byte, size))
	if st != fuse.OK {
		t.Fatalf("ReadResult.Bytes: %v", st)
	}
	res.Done()
	return b
}

// TestFileNodeReads checks the read path without mounting: splice and copy
// results, random offsets, the first and last byte, and reads across the
// end of the member, against an in-memory copy.
func TestFileNodeReads(t *testing.T) {
	disk := randomBytes(3<<20+123, 1)
	p, _ := testPackage(t, map[string][]byte{"disk1.vmdk": disk, "appliance.ovf": []byte("<Envelope/>")})
	c := entry(t, p, "disk1.vmdk").Content
	for name, content := range map[string]appliance.Content{"splice": c, "copy": noSplice{c}} {
		t.Run(name, func(t *testing.T) {
			n := &fileNode{path: "disk1.vmdk", c: content, log: nopLog()}
			rng := rand.New(rand.NewSource(2))
			cases := [][2]int64{{0, 1}, {int64(len(disk)) - 1, 1}, {int64(len(disk)) - 10, 4096}, {0, 1 << 20}}
			for range 200 {
				cases = append(cases, [2]int64{rng.Int63n(int64(len(disk))), rng.Int63n(1<<20) + 1})
			}
			for _, tc := range cases {
				got := readNode(t, n, tc[0], int(tc[1]))
				end := min(tc[0]+tc[1], int64(len(disk)))
				if !bytes.Equal(got, disk[tc[0]:end]) {
					t.Fatalf("read at %d+%d differs", tc[0], tc[1])
				}
			}
			if got := readNode(t, n, int64(len(disk)), 4096); len(got) != 0 {
				t.Errorf("read at EOF returned %d bytes", len(got))
			}
		})
	}
}

func TestFileNodeTruncatedIsEIO(t *testing.T) {
	_, path := testPackage(t, map[string][]byte{"disk.vmdk": randomBytes(8192, 3)})
	f, _ := os.Open(path)
	defer f.Close()
	// Index only the first 512+5000 bytes: the member is cut at 5000.
	cut := &limitedReaderAt{f, 512 + 5000}
	p, err := appliance.Open(appliance.Input{Name: "cut.ova", R: cut, Size: cut.n}, appliance.Options{Integrity: integrity.Options{Mode: integrity.Off}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	n := &fileNode{path: "disk.vmdk", c: entry(t, p, "disk.vmdk").Content, log: nopLog()}
	if got := readNode(t, n, 0, 4096); len(got) != 4096 {
		t.Errorf("present bytes: got %d", len(got))
	}
	if _, errno := n.Read(context.Background(), nil, make([]byte, 4096), 4096); errno != syscall.EIO {
		t.Errorf("read across the truncation: errno %v, want EIO", errno)
	}
}

type limitedReaderAt struct {
	f *os.File
	n int64
}

func (l *limitedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= l.n {
		return 0, errors.New("past the cut")
	}
	if int64(len(p)) > l.n-off {
		k, _ := l.f.ReadAt(p[:l.n-off], off)
		return k, errors.New("past the cut")
	}
	return l.f.ReadAt(p, off)
}

func TestOpenReplies(t *testing.T) {
	for _, direct := range []bool{false, true} {
		n := &fileNode{c: bytesContent("x"), directIO: direct}
		for _, fl := range []uint32{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC} {
			if _, _, errno := n.Open(context.Background(), fl); errno != syscall.EROFS {
				t.Errorf("direct %v: Open(%#x): errno %v, want EROFS", direct, fl, errno)
			}
		}
		_, fl, errno := n.Open(context.Background(), syscall.O_RDONLY)
		switch {
		case !direct && errno != syscall.ENOSYS:
			// ENOSYS has the kernel stop sending OPEN, FLUSH and RELEASE.
			t.Errorf("Open(O_RDONLY) = %#x, %v; want ENOSYS", fl, errno)
		case direct && (errno != 0 || fl != fuse.FOPEN_DIRECT_IO|fuse.FOPEN_NOFLUSH):
			t.Errorf("direct: Open(O_RDONLY) = %#x, %v; want DIRECT_IO|NOFLUSH", fl, errno)
		}
		if errno := n.Flush(context.Background(), nil); errno != syscall.ENOSYS {
			t.Errorf("Flush: %v, want ENOSYS (the kernel then stops sending it)", errno)
		}
	}
}

func TestInodesStable(t *testing.T) {
	a, b := inodes{}, inodes{}
	for _, p := range []string{"x", "disks/x.raw", "a/b/c"} {
		if a.forPath('m', p) != b.forPath('m', p) {
			t.Errorf("%q: inode differs between two builds", p)
		}
	}
	// A collision is resolved, never shared.
	c := inodes{}
	first := c.forPath('m', "same")
	if c.forPath('m', "same") == first {
		t.Error("two nodes got one inode number")
	}
}

func tarSymlink(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
}
