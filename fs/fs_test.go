package fs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/ova"
)

// testArchive writes a small OVA with a few members to a file and indexes
// it, so that members are backed by an *os.File (the splice path).
func testArchive(t *testing.T, files map[string][]byte, extra ...tar.Header) (*ova.Archive, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.ova")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := tar.NewWriter(f)
	mt := time.Unix(1700000000, 0)
	for _, name := range sortedKeys(files) {
		w.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: int64(len(files[name])), ModTime: mt, Typeflag: tar.TypeReg})
		w.Write(files[name])
	}
	for _, h := range extra {
		h.ModTime = mt
		w.WriteHeader(&h)
	}
	w.Close()
	f.Close()
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	a, err := ova.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return a, path
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func nopLog() *zerolog.Logger { l := zerolog.Nop(); return &l }

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
	a, _ := testArchive(t, map[string][]byte{"disk1.vmdk": disk, "appliance.ovf": []byte("<Envelope/>")})
	m, _ := a.Lookup("disk1.vmdk")
	c := newMemberContent(m)
	for name, content := range map[string]Content{"splice": c, "copy": struct{ Content }{c}} {
		t.Run(name, func(t *testing.T) {
			n := &fileNode{path: m.Name, c: content, log: nopLog()}
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
	a, path := testArchive(t, map[string][]byte{"disk.vmdk": randomBytes(8192, 3)})
	st, _ := os.Stat(path)
	f, _ := os.Open(path)
	defer f.Close()
	// Index only the first 512+5000 bytes: the member is cut at 5000.
	cut := &limitedReaderAt{f, 512 + 5000}
	a, err := ova.Open(cut, cut.n)
	if err != nil || st.Size() < cut.n {
		t.Fatal(err)
	}
	m, _ := a.Lookup("disk.vmdk")
	n := &fileNode{path: m.Name, c: newMemberContent(m), log: nopLog()}
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

func TestOpenForWriteIsEROFS(t *testing.T) {
	n := &fileNode{c: bytesContent("x")}
	for _, fl := range []uint32{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC} {
		if _, _, errno := n.Open(context.Background(), fl); errno != syscall.EROFS {
			t.Errorf("Open(%#x): errno %v, want EROFS", fl, errno)
		}
	}
	if _, fl, errno := n.Open(context.Background(), syscall.O_RDONLY); errno != 0 || fl&fuse.FOPEN_KEEP_CACHE == 0 {
		t.Errorf("Open(O_RDONLY) = %#x, %v; want KEEP_CACHE", fl, errno)
	}
}

type bytesContent string

func (b bytesContent) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader([]byte(b)).ReadAt(p, off)
}
func (b bytesContent) Size() int64 { return int64(len(b)) }

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

func TestSeekDataHoleSparse(t *testing.T) {
	// Sparse members come from GNU tar; ova's tests cover their maps, and
	// the mount test covers SEEK_DATA/SEEK_HOLE through the kernel.
	exts := []ova.DataExtent{{Off: 4096, Len: 4096}, {Off: 8192, Len: 100}, {Off: 1 << 20, Len: 4096}}
	mc := &memberContent{exts: exts, m: &ova.Member{Size: 2 << 20}}
	for _, tc := range []struct {
		off, data, hole int64
		dataOK          bool
	}{
		{0, 4096, 0, true}, {5000, 5000, 8292, true}, {8292, 1 << 20, 8292, true},
		{1<<20 + 10, 1<<20 + 10, 1<<20 + 4096, true}, {1<<20 + 4096, 0, 1<<20 + 4096, false},
	} {
		d, ok, _ := mc.NextData(tc.off)
		h, _ := mc.NextHole(tc.off)
		if ok != tc.dataOK || (ok && d != tc.data) || h != tc.hole {
			t.Errorf("at %d: data %d,%v hole %d; want %d,%v hole %d", tc.off, d, ok, h, tc.data, tc.dataOK, tc.hole)
		}
	}
}

func tarSymlink(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
}
