package ova

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/gzindex"
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
	stored := gz.Bytes()
	desc := `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">` +
		`<References><File ovf:id="f1" ovf:href="disk1.img.gz" ovf:compression="gzip"/></References></Envelope>`
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	mf := fmt.Sprintf("SHA256(app.ovf)= %s\nSHA256(disk1.img.gz)= %s\n", sum([]byte(desc)), sum(stored))
	if damage {
		stored[len(stored)/2] ^= 0x40
	}
	path := filepath.Join(t.TempDir(), "app.ova")
	f, _ := os.Create(path)
	tw := tar.NewWriter(f)
	for _, m := range []struct {
		name string
		b    []byte
	}{{"app.ovf", []byte(desc)}, {"app.mf", []byte(mf)}, {"disk1.img.gz", stored}} {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.b))})
		tw.Write(m.b)
	}
	tw.Close()
	f.Close()
	return path
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
	d := o.a.Descriptors()[0]
	files, _ := ResolveFiles(o.a, d)
	if len(files) != 1 || !files[0].Gzip {
		t.Fatalf("resolved %+v", files)
	}
	st, _ := o.file.Stat()
	var in *Integrity
	if o.in.Mode() != VerifyOff {
		in = o.in
	}
	return OpenGzip(context.Background(), o.a, files[0], StoredOf(files[0].Members, in), in,
		GzipOptions{CacheDir: cacheDir, Source: FileIdentity(st)})
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
	o := openPkg(t, path, IntegrityOptions{Mode: VerifyOff})
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

	// A damaged saved index is rebuilt, never used.
	saved, _ := filepath.Glob(filepath.Join(cache, "gzindex-*.bin"))
	if len(saved) != 1 {
		t.Fatalf("saved indexes: %v", saved)
	}
	b, _ := os.ReadFile(saved[0])
	b[len(b)/2] ^= 1
	os.WriteFile(saved[0], b, 0o600)
	gz, err = openGzipFile(t, o, cache)
	if err != nil || gz.FromCache {
		t.Fatalf("after damage: %v, from cache: %v", err, gz != nil && gz.FromCache)
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
	lazy := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy})
	if gz, err := openGzipFile(t, lazy, cache); err != nil || gz.FromCache {
		t.Fatalf("lazy: %v", err)
	}
	strict := openPkg(t, path, IntegrityOptions{Mode: VerifyStrict})
	gz, err := openGzipFile(t, strict, cache)
	if err != nil || gz.FromCache {
		t.Fatalf("strict after lazy: %v, from cache %v (an unchecked index must not serve a strict mount)", err, gz != nil && gz.FromCache)
	}
	if st := strict.file1(t, "disk1.img.gz").Status(); st != StatusVerified {
		t.Errorf("a strict index was built before verification: %s", st)
	}
	checkGzipReads(t, gz.Checked, content)
	strict2 := openPkg(t, path, IntegrityOptions{Mode: VerifyStrict})
	if gz, err := openGzipFile(t, strict2, cache); err != nil || !gz.FromCache {
		t.Errorf("a checked index is reused by the next strict mount: %v", err)
	}
}

func TestOpenGzipFailures(t *testing.T) {
	content := gzipContent(2 << 20)
	t.Run("damaged, strict", func(t *testing.T) {
		o := openPkg(t, gzipPkg(t, content, true), IntegrityOptions{Mode: VerifyStrict})
		if _, err := openGzipFile(t, o, ""); !errors.Is(err, ErrMismatch) {
			t.Errorf("err %v, want ErrMismatch", err)
		}
	})
	t.Run("damaged, unchecked", func(t *testing.T) {
		o := openPkg(t, gzipPkg(t, content, true), IntegrityOptions{Mode: VerifyOff})
		_, err := openGzipFile(t, o, "")
		if !errors.Is(err, gzindex.ErrCorrupt) && !errors.Is(err, gzindex.ErrChecksum) {
			t.Errorf("err %v, want a gzip error", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		o := openPkg(t, gzipPkg(t, content, false), IntegrityOptions{Mode: VerifyOff})
		files, _ := ResolveFiles(o.a, o.a.Descriptors()[0])
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := OpenGzip(ctx, o.a, files[0], StoredOf(files[0].Members, nil), nil, GzipOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
}
