package logical

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/gzindex"
	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// gzipPkg writes an OVA holding content gzip-compressed as disk1.img.gz,
// with a SHA256 manifest of the stored (compressed) bytes; damage flips a
// compressed byte after the manifest was written.
func gzipPkg(t *testing.T, content []byte, damage bool) string {
	t.Helper()
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	w.Write(content)
	w.Close()
	stored := testpkg.File{Name: "disk1.img.gz", Data: gz.Bytes()}
	desc := testpkg.F("app.ovf", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">`+
		`<References><File ovf:id="f1" ovf:href="disk1.img.gz" ovf:compression="gzip"/></References></Envelope>`)
	mf := testpkg.Manifest("SHA256", desc, stored).Named("app.mf")
	if damage {
		stored.Data[len(stored.Data)/2] ^= 0x40
	}
	path := filepath.Join(t.TempDir(), "app.ova")
	testpkg.WriteOVA(t, path, desc, mf, stored)
	return path
}

// opened is the test package, indexed and checked.
type opened struct {
	a      *ova.Archive
	checks *integrity.Checks
	st     os.FileInfo
}

func openPkg(t *testing.T, path string, mode integrity.Mode) *opened {
	t.Helper()
	a, st := testpkg.OpenArchive(t, path)
	p := integrity.Package{Archive: a}
	p.Descriptor, _ = a.Lookup("app.ovf")
	p.Manifest, _ = a.Lookup("app.mf")
	return &opened{a: a, checks: integrity.New(p, integrity.Options{Mode: mode}), st: st}
}

func (o *opened) file1(t *testing.T, name string) *integrity.File {
	m, ok := o.a.Lookup(name)
	if !ok {
		t.Fatalf("%s is not in the archive", name)
	}
	return o.checks.File(m)
}

// gzipContent is compressible but not trivial: text-like runs and noise.
func gzipContent(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < n; {
		k := min(n-i, 1+rng.Intn(300))
		if rng.Intn(3) == 0 {
			rng.Read(b[i : i+k])
		} else {
			copy(b[i:i+k], bytes.Repeat([]byte("ovfmount "), k/9+1))
		}
		i += k
	}
	return b
}

// openGzipFile opens the package's gzip file as a mount would.
func openGzipFile(t *testing.T, o *opened, cacheDir string) (*Gzip, error) {
	t.Helper()
	m, _ := o.a.Lookup("disk1.img.gz")
	return OpenGzip(context.Background(), m.Name, StoredOf([]*ova.Member{m}, o.checks), o.checks,
		GzipOptions{CacheDir: cacheDir, Identity: o.a.Identity(ova.FileIdentity(o.st))})
}

func checkGzipReads(t *testing.T, r *gzindex.Reader, want []byte) {
	t.Helper()
	if r.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", r.Size(), len(want))
	}
	rng := rand.New(rand.NewSource(3))
	buf := make([]byte, 256<<10)
	for range 50 {
		off := rng.Int63n(int64(len(want)))
		n := 1 + rng.Intn(len(buf))
		k, err := r.ReadAt(buf[:n], off)
		end := min(off+int64(n), int64(len(want)))
		if !bytes.Equal(buf[:k], want[off:end]) || (k < n && err == nil) {
			t.Fatalf("read %d at %d: %d bytes, %v, or wrong bytes", n, off, k, err)
		}
	}
}

func TestOpenGzipCachesIndex(t *testing.T) {
	content := gzipContent(9<<20 + 333)
	path := gzipPkg(t, content, false)
	cache := t.TempDir()
	o := openPkg(t, path, integrity.Off)
	gz, err := openGzipFile(t, o, cache)
	if err != nil || gz.FromCache {
		t.Fatalf("first open: %v (from cache: %v)", err, gz != nil && gz.FromCache)
	}
	checkGzipReads(t, gz.Checked, content)
	if gz.Index.Checkpoints() < 4 {
		t.Errorf("%d checkpoints for 9 MiB at a %d-byte span", gz.Index.Checkpoints(), GzipSpan)
	}

	gz, err = openGzipFile(t, o, cache)
	if err != nil || !gz.FromCache {
		t.Fatalf("second open: %v, from cache: %v", err, gz != nil && gz.FromCache)
	}
	checkGzipReads(t, gz.Checked, content)

	gz.Close()

	// A saved index whose head is damaged is rebuilt, never used; one
	// whose window is damaged is used, and reads pass that window over
	// (see gzindex.Load).
	saved, _ := filepath.Glob(filepath.Join(cache, "gzindex-*.bin"))
	if len(saved) != 1 {
		t.Fatalf("saved indexes: %v", saved)
	}
	good, _ := os.ReadFile(saved[0])
	b := bytes.Clone(good)
	b[len(b)-100] ^= 1 // in the last window
	os.WriteFile(saved[0], b, 0o600)
	gz, err = openGzipFile(t, o, cache)
	if err != nil || !gz.FromCache {
		t.Fatalf("a damaged window: %v, from cache: %v", err, gz != nil && gz.FromCache)
	}
	checkGzipReads(t, gz.Checked, content)
	gz.Close()
	b = bytes.Clone(good)
	b[len(gzipIndexMagic)+30] ^= 1 // in the head
	os.WriteFile(saved[0], b, 0o600)
	gz, err = openGzipFile(t, o, cache)
	if err != nil || gz.FromCache {
		t.Fatalf("a damaged head: %v, from cache: %v", err, gz != nil && gz.FromCache)
	}
	checkGzipReads(t, gz.Checked, content)
	if gz, err := openGzipFile(t, o, cache); err != nil || !gz.FromCache {
		t.Errorf("the rebuilt index was not saved again: %v", err)
	}
}

// An index built from bytes not yet checked serves a lazy mount, but a
// strict one builds its own, after verification, and saves that.
func TestOpenGzipStrict(t *testing.T) {
	content := gzipContent(3 << 20)
	path := gzipPkg(t, content, false)
	cache := t.TempDir()
	lazy := openPkg(t, path, integrity.Lazy)
	if gz, err := openGzipFile(t, lazy, cache); err != nil || gz.FromCache {
		t.Fatalf("lazy: %v", err)
	}
	strict := openPkg(t, path, integrity.Strict)
	gz, err := openGzipFile(t, strict, cache)
	if err != nil || gz.FromCache {
		t.Fatalf("strict after lazy: %v, from cache %v (an unchecked index must not serve a strict mount)", err, gz != nil && gz.FromCache)
	}
	if st := strict.file1(t, "disk1.img.gz").Status(); st != integrity.StatusVerified {
		t.Errorf("a strict index was built before verification: %s", st)
	}
	checkGzipReads(t, gz.Checked, content)
	strict2 := openPkg(t, path, integrity.Strict)
	if gz, err := openGzipFile(t, strict2, cache); err != nil || !gz.FromCache {
		t.Errorf("a checked index is reused by the next strict mount: %v", err)
	}
}

func TestOpenGzipFailures(t *testing.T) {
	content := gzipContent(2 << 20)
	t.Run("damaged, strict", func(t *testing.T) {
		o := openPkg(t, gzipPkg(t, content, true), integrity.Strict)
		if _, err := openGzipFile(t, o, ""); !errors.Is(err, integrity.ErrMismatch) {
			t.Errorf("err %v, want ErrMismatch", err)
		}
	})
	t.Run("damaged, unchecked", func(t *testing.T) {
		o := openPkg(t, gzipPkg(t, content, true), integrity.Off)
		_, err := openGzipFile(t, o, "")
		if !errors.Is(err, gzindex.ErrCorrupt) && !errors.Is(err, gzindex.ErrChecksum) {
			t.Errorf("err %v, want a gzip error", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		o := openPkg(t, gzipPkg(t, content, false), integrity.Off)
		m, _ := o.a.Lookup("disk1.img.gz")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := OpenGzip(ctx, m.Name, StoredOf([]*ova.Member{m}, nil), nil, GzipOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
}
