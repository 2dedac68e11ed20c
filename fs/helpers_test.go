package fs

import (
	"archive/tar"
	"context"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/route"
)

// testPackage writes a small OVA with the given members to a file and
// opens it as a package (verification off), so that members are backed by
// an *os.File (the splice path).
func testPackage(t *testing.T, files map[string][]byte, extra ...tar.Header) (*appliance.Package, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.ova")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := tar.NewWriter(f)
	mt := time.Unix(1700000000, 0)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		w.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: int64(len(files[name])), ModTime: mt, Typeflag: tar.TypeReg})
		w.Write(files[name])
	}
	for _, h := range extra {
		h.ModTime = mt
		w.WriteHeader(&h)
	}
	w.Close()
	f.Close()
	return openPackage(t, path), path
}

func openPackage(t *testing.T, path string) *appliance.Package {
	t.Helper()
	p, err := appliance.OpenPath(path, appliance.Options{Integrity: integrity.Options{Mode: integrity.Off}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// entry is the package's entry at path.
func entry(t *testing.T, p *appliance.Package, path string) *appliance.Entry {
	t.Helper()
	e := p.Lookup(path)
	if e == nil {
		t.Fatalf("%s is not in the plan", path)
	}
	return e
}

// withFile adds a virtual file to a plan, in path order, with its folder.
func withFile(entries []*appliance.Entry, path string, c appliance.Content) []*appliance.Entry {
	out := append([]*appliance.Entry{}, entries...)
	if dir := parentOf(path); dir != "" {
		out = append(out, &appliance.Entry{Path: dir, Type: appliance.Dir, Perm: 0o755})
	}
	out = append(out, &appliance.Entry{Path: path, Type: appliance.Regular, Perm: 0o444, Content: c})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func nopLog() *zerolog.Logger { l := zerolog.Nop(); return &l }

// readerContent is content made of a reader, for tests: no holes, nothing
// to verify, never spliced.
type readerContent struct {
	r    io.ReaderAt
	size int64
}

func bytesContent(s string) *readerContent {
	return &readerContent{r: &bytesReader{[]byte(s)}, size: int64(len(s))}
}

type bytesReader struct{ b []byte }

func (b *bytesReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b.b)) {
		return 0, io.EOF
	}
	n := copy(p, b.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (c *readerContent) Size() int64 { return c.size }
func (c *readerContent) Read(ctx context.Context, p []byte, off int64, splice bool) (route.Reply, error) {
	n, err := c.r.ReadAt(p, off)
	if n < len(p) {
		return route.Reply{}, err
	}
	return route.Bytes(p), nil
}
func (c *readerContent) NextData(off int64) (int64, bool, error) { return off, off < c.size, nil }
func (c *readerContent) NextHole(off int64) (int64, error)       { return max(off, c.size), nil }
func (c *readerContent) Allocated() int64                        { return c.size }
func (c *readerContent) Status() (string, string)                { return "off", "" }
func (c *readerContent) Opened()                                 {}

// noSplice serves a content's reads copied, never spliced.
type noSplice struct{ appliance.Content }

func (c noSplice) Read(ctx context.Context, p []byte, off int64, _ bool) (route.Reply, error) {
	return c.Content.Read(ctx, p, off, false)
}
