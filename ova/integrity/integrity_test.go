package integrity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	mrand "math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/ova"
)

// pkg describes a generated appliance and how to sign or damage it.
type pkg struct {
	alg       string // manifest algorithm: SHA1, SHA256, SHA512
	key       crypto.Signer
	otherKey  crypto.Signer // signs instead of key: a signature by someone else
	tamperMF  bool          // edit a digest line after signing
	flipDisk  bool          // flip a disk byte after the manifest was made
	unlisted  bool          // add a file the manifest does not list
	skipOVF   bool          // leave the descriptor out of the manifest
	diskBytes int
}

// writePkg writes the appliance as an OVA file and returns its path, the
// disk bytes (as stored, after any flip) and the signer.
func writePkg(t testing.TB, p pkg) (string, []byte, *testpkg.Signer) {
	t.Helper()
	if p.diskBytes == 0 {
		p.diskBytes = 3<<20 + 12345
	}
	disk := make([]byte, p.diskBytes)
	mrand.New(mrand.NewSource(1)).Read(disk)
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.vmdk")}
	listed := []testpkg.File{desc, {Name: "disk1.vmdk", Data: disk}}
	if p.skipOVF {
		listed = listed[1:]
	}
	mf := testpkg.Manifest(p.alg, listed...).Named("app.mf")
	files := []testpkg.File{desc}
	var s *testpkg.Signer
	var cert []byte
	if p.key != nil {
		s = testpkg.NewSigner(t, p.key)
		cert = s.Sign(t, p.alg, "app.mf", mf.Data, p.otherKey)
	}
	if p.tamperMF {
		mf.Data = bytes.Replace(mf.Data, []byte(testpkg.Digest(p.alg, disk)[:8]), []byte("00000000"), 1)
	}
	if p.flipDisk {
		disk[2<<20+5] ^= 0xff // inside chunk 2
	}
	files = append(files, mf)
	if cert != nil {
		files = append(files, testpkg.File{Name: "app.cert", Data: cert})
	}
	files = append(files, testpkg.File{Name: "disk1.vmdk", Data: disk})
	if p.unlisted {
		files = append(files, testpkg.F("extra.txt", "not in the manifest"))
	}
	path := filepath.Join(t.TempDir(), "app.ova")
	testpkg.WriteOVA(t, path, files...)
	return path, disk, s
}

// opened is an indexed OVA and its Checks, with the events they sent.
type opened struct {
	a      *ova.Archive
	c      *Checks
	mu     sync.Mutex
	events []Event
}

// openPkg indexes the OVA and checks it as the package app.ovf, app.mf
// and app.cert, collecting events.
func openPkg(t testing.TB, path string, opts Options) *opened {
	t.Helper()
	a, st := testpkg.OpenArchive(t, path)
	return checkPkg(a, st, opts)
}

// checkPkg checks the indexed OVA as openPkg does.
func checkPkg(a *ova.Archive, st os.FileInfo, opts Options) *opened {
	o := &opened{a: a}
	opts.OnEvent = func(e Event) {
		o.mu.Lock()
		o.events = append(o.events, e)
		o.mu.Unlock()
	}
	if opts.Identity == nil && opts.CacheDir != "" {
		opts.Identity = a.Identity(ova.FileIdentity(st))
	}
	p := Package{Archive: a}
	p.Descriptor, _ = a.Lookup("app.ovf")
	p.Manifest, _ = a.Lookup("app.mf")
	p.Cert, _ = a.Lookup("app.cert")
	o.c = New(p, opts)
	return o
}

func (o *opened) file1(t testing.TB, name string) *File {
	m, ok := o.a.Lookup(name)
	if !ok {
		t.Fatalf("%s not in the archive", name)
	}
	return o.c.File(m)
}

// verifiedPkg writes a package with a disk of diskBytes under a SHA256
// manifest, opens it lazily and verifies the disk; it returns the disk's
// file, its bytes, the package's path and the opened package.
func verifiedPkg(t testing.TB, diskBytes int) (*File, []byte, string, *opened) {
	t.Helper()
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", diskBytes: diskBytes})
	o := openPkg(t, path, Options{Mode: Lazy})
	f := o.file1(t, "disk1.vmdk")
	f.Start()
	f.Wait(context.Background())
	if f.Status() != StatusVerified {
		t.Fatalf("status %s", f.Status())
	}
	return f, disk, path, o
}

// needsCheck reports whether the file's bytes must be read to be served.
func needsCheck(f *File) bool {
	_, ok := f.HostRanges(0, 1)
	return !ok
}

func TestSignatures(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name  string
		p     pkg
		trust bool
		want  string
	}{
		{"rsa sha256 trusted", pkg{alg: "SHA256", key: rsaKey}, true, "ok"},
		{"rsa sha1 trusted", pkg{alg: "SHA1", key: rsaKey}, true, "ok"},
		{"ecdsa sha512 trusted", pkg{alg: "SHA512", key: ecKey}, true, "ok"},
		{"rsa sha256 untrusted", pkg{alg: "SHA256", key: rsaKey}, false, "ok-untrusted"},
		{"edited manifest", pkg{alg: "SHA256", key: rsaKey, tamperMF: true}, true, "bad"},
		{"another key", pkg{alg: "SHA256", key: rsaKey, otherKey: otherKey}, true, "bad"},
		{"unsigned", pkg{alg: "SHA256"}, true, "absent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _, s := writePkg(t, tc.p)
			opts := Options{Mode: Lazy}
			if tc.trust && s != nil {
				opts.Roots = s.Pool
			} else {
				opts.Roots = x509.NewCertPool() // trust nothing
			}
			o := openPkg(t, path, opts)
			sig := o.c.Signature()
			if sig.State != tc.want {
				t.Fatalf("signature %q (%v), want %q", sig.State, sig.Err, tc.want)
			}
			if tc.want == "ok-untrusted" && !strings.Contains(sig.String(), "CN=Appliance Vendor") {
				t.Errorf("the untrusted verdict does not name the signer: %q", sig.String())
			}
		})
	}
}

func TestLazyVerification(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256"})
	o := openPkg(t, path, Options{Mode: Lazy})
	f := o.file1(t, "disk1.vmdk")
	if f.Status() != StatusPending || needsCheck(f) {
		t.Fatalf("before opening: %s, needs check %v", f.Status(), needsCheck(f))
	}
	buf := make([]byte, 100)
	if _, err := f.ReadAt(buf, 5); err != nil || !bytes.Equal(buf, disk[5:105]) {
		t.Fatalf("a lazy read is served at once: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if f.Status() != StatusPending {
		t.Fatal("a read started verification; only opening the file should")
	}
	f.Start() // the mount calls this when the file is opened
	f.Wait(context.Background())
	if f.Status() != StatusVerified || !needsCheck(f) {
		t.Fatalf("after verification: %s", f.Status())
	}
	all := make([]byte, len(disk))
	if _, err := f.ReadAt(all, 0); err != nil || !bytes.Equal(all, disk) {
		t.Fatalf("a checked read of the whole file: %v", err)
	}
	if !strings.HasPrefix(f.Digest(), "SHA256:") || o.file1(t, "app.mf").Status() != StatusMeta {
		t.Errorf("digest %q, manifest status %s", f.Digest(), o.file1(t, "app.mf").Status())
	}

	// The archive is damaged on disk after the file was verified: the read
	// of that piece fails (once the recent-chunk cache has expired), the
	// file is marked, and its other chunks fail too.
	time.Sleep(1100 * time.Millisecond)
	w, _ := os.OpenFile(path, os.O_WRONLY, 0)
	m, _ := o.a.Lookup("disk1.vmdk")
	_, phys, _ := m.Contiguous()
	w.WriteAt([]byte{^disk[3<<20]}, phys+3<<20)
	w.Close()
	if _, err := f.ReadAt(buf, 1<<20); err != nil {
		t.Fatalf("an intact chunk: %v", err)
	}
	if _, err := f.ReadAt(buf, 3<<20); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "piece 96 (bytes 3145728-3158072)") {
		t.Fatalf("the damaged chunk: %v", err)
	}
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, ErrMismatch) || f.Status() != StatusMismatch {
		t.Errorf("after a mismatch every read fails: %v, %s", err, f.Status())
	}
	var chunkEvent bool
	for _, e := range o.events {
		if e.Status == StatusMismatch && e.Piece == 3*piecesPerChunk && e.Expected != e.Actual && e.Algorithm == chunkAlgorithm {
			chunkEvent = true
		}
	}
	if !chunkEvent {
		t.Errorf("no mismatch event naming piece 96: %+v", o.events)
	}
}

// TestCheckedReadsParallel has readers race over more chunks than the
// recent-chunk cache holds, so chunk buffers are evicted and recycled while
// other readers still copy out of them: every byte must still be right.
func TestCheckedReadsParallel(t *testing.T) {
	f, disk, _, _ := verifiedPkg(t, (recentChunks+8)*ChunkSize+777)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewSource(int64(g)))
			buf := make([]byte, 3*ChunkSize)
			for range 60 {
				n := 1 + rng.Intn(len(buf))
				off := rng.Int63n(int64(len(disk)))
				got, err := f.ReadAt(buf[:n], off)
				want := disk[off:min(off+int64(n), int64(len(disk)))]
				if (err != nil && err != io.EOF) || !bytes.Equal(buf[:got], want) {
					t.Errorf("read of %d at %d: %d bytes, %v, or wrong bytes", n, off, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestStrictVerification(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	t.Run("verified first", func(t *testing.T) {
		path, disk, s := writePkg(t, pkg{alg: "SHA512", key: rsaKey, unlisted: true})
		o := openPkg(t, path, Options{Mode: Strict, Roots: s.Pool})
		f := o.file1(t, "disk1.vmdk")
		buf := make([]byte, 4096)
		if _, err := f.ReadAt(buf, 1<<20); err != nil || !bytes.Equal(buf, disk[1<<20:1<<20+4096]) {
			t.Fatalf("strict read: %v", err)
		}
		if f.Status() != StatusVerified {
			t.Errorf("a strict read returned before verification: %s", f.Status())
		}
		if _, err := o.file1(t, "extra.txt").ReadAt(buf, 0); !errors.Is(err, ErrUnlisted) {
			t.Errorf("an unlisted file in strict mode: %v", err)
		}
		if o.file1(t, "app.mf").Status() != StatusVerified {
			t.Error("a signed manifest is verified by its signature")
		}
	})
	t.Run("allow unlisted", func(t *testing.T) {
		path, _, _ := writePkg(t, pkg{alg: "SHA256", unlisted: true})
		o := openPkg(t, path, Options{Mode: Strict, AllowUnlisted: true})
		if _, err := o.file1(t, "extra.txt").ReadAt(make([]byte, 4), 0); err != nil {
			t.Errorf("--allow-unlisted: %v", err)
		}
	})
	t.Run("damaged disk", func(t *testing.T) {
		path, _, _ := writePkg(t, pkg{alg: "SHA256", flipDisk: true})
		o := openPkg(t, path, Options{Mode: Strict})
		f := o.file1(t, "disk1.vmdk")
		if _, err := f.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrMismatch) {
			t.Fatalf("strict read of a damaged file: %v", err)
		}
		if _, err := o.file1(t, "app.ovf").ReadAt(make([]byte, 10), 0); err != nil {
			t.Errorf("an intact file beside it: %v", err)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		path, _, s := writePkg(t, pkg{alg: "SHA256", key: rsaKey, otherKey: other})
		o := openPkg(t, path, Options{Mode: Strict, Roots: s.Pool})
		for _, name := range []string{"disk1.vmdk", "app.ovf"} {
			if _, err := o.file1(t, name).ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrBadSignature) {
				t.Errorf("%s under a bad signature: %v", name, err)
			}
		}
	})
	t.Run("untrusted signer required", func(t *testing.T) {
		path, _, _ := writePkg(t, pkg{alg: "SHA256", key: rsaKey})
		o := openPkg(t, path, Options{Mode: Strict, Roots: x509.NewCertPool(), RequireTrustedSigner: true})
		if o.c.Signature().State != "bad" {
			t.Errorf("an untrusted signer with --require-trusted-signer: %s", o.c.Signature().State)
		}
	})
}

func TestOff(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", flipDisk: true})
	o := openPkg(t, path, Options{Mode: Off})
	f := o.file1(t, "disk1.vmdk")
	buf := make([]byte, len(disk))
	if _, err := f.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, disk) || f.Status() != StatusOff || needsCheck(f) {
		t.Errorf("verification off: %v, %s", err, f.Status())
	}
}

// TestChunkTablesPersist: a verification leaves trusted chunk tables in the
// cache dir, so the next strict mount is verified at once when it trusts
// them; a damaged table, a changed archive, or a run that does not trust
// tables never takes a file as verified without reading it.
func TestChunkTablesPersist(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA1"})
	cache := t.TempDir()
	o := openPkg(t, path, Options{Mode: Lazy, CacheDir: cache})
	if err := o.c.VerifyAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "chunks-*.bin"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v", files)
	}
	o2 := openPkg(t, path, Options{Mode: Strict, CacheDir: cache, UseCachedTables: true})
	f := o2.file1(t, "disk1.vmdk")
	if f.Status() != StatusVerified || !f.Cached() {
		t.Fatalf("the second mount is %s, want verified from the cache", f.Status())
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 2<<20); err != nil || !bytes.Equal(buf, disk[2<<20:2<<20+4096]) {
		t.Errorf("read checked against the cached table: %v", err)
	}
	if o3 := openPkg(t, path, Options{Mode: Lazy, CacheDir: cache}); o3.file1(t, "disk1.vmdk").Status() != StatusPending {
		t.Error("a run that does not trust tables took a file as verified")
	}

	// A damaged table file is discarded, with a warning.
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 1
	os.WriteFile(files[0], b, 0o600)
	o3 := openPkg(t, path, Options{Mode: Lazy, CacheDir: cache, UseCachedTables: true})
	if o3.file1(t, "disk1.vmdk").Status() != StatusPending || !strings.Contains(strings.Join(o3.c.Warnings(), "\n"), "discarded") {
		t.Errorf("a damaged cache was trusted: %s, %v", o3.file1(t, "disk1.vmdk").Status(), o3.c.Warnings())
	}

	// An archive rewritten in place with its mtime put back (touch -r) has
	// another identity: its ctime moved.
	o4 := openPkg(t, path, Options{Mode: Lazy, CacheDir: cache})
	o4.c.VerifyAll(context.Background(), nil)
	st, _ := os.Stat(path)
	time.Sleep(20 * time.Millisecond) // a ctime of its own
	w, _ := os.OpenFile(path, os.O_WRONLY, 0)
	m, _ := o4.a.Lookup("disk1.vmdk")
	_, phys, _ := m.Contiguous()
	w.WriteAt([]byte{^disk[100]}, phys+100)
	w.Close()
	os.Chtimes(path, st.ModTime(), st.ModTime())
	o5 := openPkg(t, path, Options{Mode: Lazy, CacheDir: cache, UseCachedTables: true})
	f5 := o5.file1(t, "disk1.vmdk")
	if f5.Status() != StatusPending {
		t.Fatal("a table was trusted for an archive rewritten in place with its mtime restored")
	}
	if err := o5.c.VerifyAll(context.Background(), nil); err != nil || f5.Status() != StatusMismatch {
		t.Errorf("the rewritten archive: %v, %s", err, f5.Status())
	}
}

// TestVerifyAllInterrupted: a cancelled VerifyAll returns once the files
// being hashed have stopped, leaves them pending, and leaves no half
// written cache file behind (a file verified before the cancel may have
// its table kept, whole).
func TestVerifyAllInterrupted(t *testing.T) {
	path, _, _ := writePkg(t, pkg{alg: "SHA256", diskBytes: 64 << 20})
	cache := t.TempDir()
	o := openPkg(t, path, Options{Mode: Lazy, CacheDir: cache})
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	err := o.c.VerifyAll(ctx, func(int64) { once.Do(cancel) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("VerifyAll after cancel: %v", err)
	}
	if st := o.file1(t, "disk1.vmdk").Status(); st != StatusPending {
		t.Errorf("an interrupted file is %s, want pending", st)
	}
	left, _ := os.ReadDir(cache)
	for _, e := range left {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("the cache holds %s after an interrupted verification", e.Name())
		}
	}
}

func TestVerifyAllReports(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", flipDisk: true, unlisted: true})
	o := openPkg(t, path, Options{Mode: Lazy})
	var mu sync.Mutex
	var hashed int64
	total := o.c.ListedTotal()
	if err := o.c.VerifyAll(context.Background(), func(n int64) { mu.Lock(); hashed += n; mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if hashed != total || total < int64(len(disk)) {
		t.Errorf("progress reported %d of %d bytes", hashed, total)
	}
	if o.file1(t, "disk1.vmdk").Status() != StatusMismatch || o.file1(t, "app.ovf").Status() != StatusVerified {
		t.Errorf("statuses: disk %s, ovf %s", o.file1(t, "disk1.vmdk").Status(), o.file1(t, "app.ovf").Status())
	}
	cov := o.c.Coverage()
	if len(cov.Unlisted) != 1 || cov.Unlisted[0] != "extra.txt" {
		t.Errorf("coverage: %+v", cov)
	}
}

func TestDecodeTablesHostile(t *testing.T) {
	id := bytes.Repeat([]byte{7}, 32)
	good := encodeTables(map[string]*chunkTable{"d": {Name: "d", Size: 3 << 20, Algorithm: "SHA256", Digest: []byte{1, 2},
		Pieces: make([]pieceDigest, 3*piecesPerChunk)}}, id)
	if _, err := decodeTables(good, id); err != nil {
		t.Fatalf("a good encoding: %v", err)
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		if _, err := decodeTables(b, id); err == nil {
			t.Fatalf("a flip at byte %d was accepted", i)
		}
	}
	if _, err := decodeTables(good, bytes.Repeat([]byte{8}, 32)); err == nil {
		t.Error("a table of another archive was accepted")
	}
}

func FuzzDecodeTables(f *testing.F) {
	id := bytes.Repeat([]byte{7}, 32)
	f.Add(encodeTables(map[string]*chunkTable{"d": {Name: "d", Size: 1, Algorithm: "SHA1", Digest: []byte{1}, Pieces: make([]pieceDigest, 1)}}, id))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeTables(b, id)
	})
}
