package ova

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	mrand "math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pkg describes a generated appliance and how to sign or damage it.
type pkg struct {
	alg       string // manifest algorithm: SHA1, SHA256, SHA512
	key       crypto.Signer
	otherKey  crypto.Signer // signs instead of key: a signature by someone else
	tamperMF  bool          // edit a digest line after signing
	flipDisk  bool          // flip a disk byte after the manifest was made
	unlisted  bool          // add a file the manifest does not list
	diskBytes int
}

type signer struct {
	key  crypto.Signer
	cert *x509.Certificate
	der  []byte
	pool *x509.CertPool
}

// newSigner makes a CA and a leaf signed by it, so chains can be trusted.
func newSigner(t testing.TB, key crypto.Signer) *signer {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ovfmount test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Appliance Vendor", Organization: []string{"Example"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &signer{key: key, cert: leaf, der: der, pool: pool}
}

func hashFor(alg string) (hash.Hash, crypto.Hash) {
	switch alg {
	case "SHA1":
		return sha1.New(), crypto.SHA1
	case "SHA512":
		return sha512.New(), crypto.SHA512
	}
	return sha256.New(), crypto.SHA256
}

func digestOf(alg string, b []byte) string {
	h, _ := hashFor(alg)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// writePkg writes the appliance as an OVA file and returns its path, the
// disk bytes (as stored, after any flip) and the signer.
func writePkg(t *testing.T, p pkg) (string, []byte, *signer) {
	t.Helper()
	if p.diskBytes == 0 {
		p.diskBytes = 3<<20 + 12345
	}
	disk := make([]byte, p.diskBytes)
	mrand.New(mrand.NewSource(1)).Read(disk)
	desc := []byte(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References><File href="disk1.vmdk"/></References></Envelope>`)
	mf := fmt.Sprintf("%s(app.ovf)= %s\n%s(disk1.vmdk)= %s\n", p.alg, digestOf(p.alg, desc), p.alg, digestOf(p.alg, disk))
	files := []struct {
		name string
		data []byte
	}{{"app.ovf", desc}}
	var s *signer
	var cert []byte
	if p.key != nil {
		s = newSigner(t, p.key)
		h, ch := hashFor(p.alg)
		h.Write([]byte(mf))
		signWith := p.key
		if p.otherKey != nil {
			signWith = p.otherKey
		}
		sig, err := signWith.Sign(rand.Reader, h.Sum(nil), ch)
		if err != nil {
			t.Fatal(err)
		}
		cert = []byte(fmt.Sprintf("%s(app.mf)= %x\n", p.alg, sig))
		cert = append(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.der})...)
	}
	if p.tamperMF {
		mf = strings.Replace(mf, digestOf(p.alg, disk)[:8], "00000000", 1)
	}
	if p.flipDisk {
		disk[2<<20+5] ^= 0xff // inside chunk 2
	}
	files = append(files, struct {
		name string
		data []byte
	}{"app.mf", []byte(mf)})
	if cert != nil {
		files = append(files, struct {
			name string
			data []byte
		}{"app.cert", cert})
	}
	files = append(files, struct {
		name string
		data []byte
	}{"disk1.vmdk", disk})
	if p.unlisted {
		files = append(files, struct {
			name string
			data []byte
		}{"extra.txt", []byte("not in the manifest")})
	}
	path := filepath.Join(t.TempDir(), "app.ova")
	f, _ := os.Create(path)
	tw := tar.NewWriter(f)
	for _, fl := range files {
		tw.WriteHeader(&tar.Header{Name: fl.name, Mode: 0o644, Size: int64(len(fl.data))})
		tw.Write(fl.data)
	}
	tw.Close()
	f.Close()
	return path, disk, s
}

// openPkg indexes the OVA and builds its Integrity, collecting events.
type opened struct {
	a      *Archive
	in     *Integrity
	file   *os.File
	mu     sync.Mutex
	events []Event
}

func openPkg(t *testing.T, path string, opts IntegrityOptions) *opened {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	a, err := Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	o := &opened{a: a, file: f}
	opts.OnEvent = func(e Event) {
		o.mu.Lock()
		o.events = append(o.events, e)
		o.mu.Unlock()
	}
	if opts.Source == nil && opts.CacheDir != "" {
		opts.Source = FileIdentity(st)
	}
	o.in = NewIntegrity(a, opts)
	return o
}

func (o *opened) file1(t *testing.T, name string) *VerifiedFile {
	m, ok := o.a.Lookup(name)
	if !ok {
		t.Fatalf("%s not in the archive", name)
	}
	return o.in.File(m)
}

// verifiedPkg writes a package with a disk of diskBytes under a SHA256
// manifest, opens it lazily and verifies the disk; it returns the disk's
// file, its bytes, the package's path and the opened package.
func verifiedPkg(t *testing.T, diskBytes int) (*VerifiedFile, []byte, string, *opened) {
	t.Helper()
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", diskBytes: diskBytes})
	o := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy})
	f := o.file1(t, "disk1.vmdk")
	f.Start()
	f.Wait(context.Background())
	if f.Status() != StatusVerified {
		t.Fatalf("status %s", f.Status())
	}
	return f, disk, path, o
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
			opts := IntegrityOptions{Mode: VerifyLazy}
			if tc.trust && s != nil {
				opts.Roots = s.pool
			} else {
				opts.Roots = x509.NewCertPool() // trust nothing
			}
			o := openPkg(t, path, opts)
			sig := o.in.Signature()
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
	o := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy})
	f := o.file1(t, "disk1.vmdk")
	if f.Status() != StatusPending || f.NeedsCheck() {
		t.Fatalf("before opening: %s, needs check %v", f.Status(), f.NeedsCheck())
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
	if f.Status() != StatusVerified || !f.NeedsCheck() {
		t.Fatalf("after verification: %s", f.Status())
	}
	all := make([]byte, len(disk))
	if _, err := f.ReadAt(all, 0); err != nil || !bytes.Equal(all, disk) {
		t.Fatalf("a checked read of the whole file: %v", err)
	}
	if !strings.HasPrefix(f.Digest(), "SHA256:") || o.file1(t, "app.mf").Status() != StatusUnlisted {
		t.Errorf("digest %q, manifest status %s", f.Digest(), o.file1(t, "app.mf").Status())
	}

	// The archive is damaged on disk after the file was verified: the read
	// of that chunk fails (once the recent-chunk cache has expired), the
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
	if _, err := f.ReadAt(buf, 3<<20); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "chunk 3") {
		t.Fatalf("the damaged chunk: %v", err)
	}
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, ErrMismatch) || f.Status() != StatusMismatch {
		t.Errorf("after a mismatch every read fails: %v, %s", err, f.Status())
	}
	var chunkEvent bool
	for _, e := range o.events {
		if e.Status == StatusMismatch && e.Chunk == 3 && e.Expected != e.Actual && e.Algorithm == chunkAlgorithm {
			chunkEvent = true
		}
	}
	if !chunkEvent {
		t.Errorf("no mismatch event naming chunk 3: %+v", o.events)
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
		o := openPkg(t, path, IntegrityOptions{Mode: VerifyStrict, Roots: s.pool})
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
		o := openPkg(t, path, IntegrityOptions{Mode: VerifyStrict, AllowUnlisted: true})
		if _, err := o.file1(t, "extra.txt").ReadAt(make([]byte, 4), 0); err != nil {
			t.Errorf("--allow-unlisted: %v", err)
		}
	})
	t.Run("damaged disk", func(t *testing.T) {
		path, _, _ := writePkg(t, pkg{alg: "SHA256", flipDisk: true})
		o := openPkg(t, path, IntegrityOptions{Mode: VerifyStrict})
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
		o := openPkg(t, path, IntegrityOptions{Mode: VerifyStrict, Roots: s.pool})
		for _, name := range []string{"disk1.vmdk", "app.ovf"} {
			if _, err := o.file1(t, name).ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrBadSignature) {
				t.Errorf("%s under a bad signature: %v", name, err)
			}
		}
	})
	t.Run("untrusted signer required", func(t *testing.T) {
		path, _, _ := writePkg(t, pkg{alg: "SHA256", key: rsaKey})
		o := openPkg(t, path, IntegrityOptions{Mode: VerifyStrict, Roots: x509.NewCertPool(), RequireTrustedSigner: true})
		if o.in.Signature().State != "bad" {
			t.Errorf("an untrusted signer with --require-trusted-signer: %s", o.in.Signature().State)
		}
	})
}

func TestVerifyOff(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", flipDisk: true})
	o := openPkg(t, path, IntegrityOptions{Mode: VerifyOff})
	f := o.file1(t, "disk1.vmdk")
	buf := make([]byte, len(disk))
	if _, err := f.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, disk) || f.Status() != StatusOff || f.NeedsCheck() {
		t.Errorf("verification off: %v, %s", err, f.Status())
	}
}

// TestChunkTablesPersist: a verification leaves trusted chunk tables in the
// cache dir, so the next strict mount is verified at once; a damaged file
// or a changed archive is never trusted.
func TestChunkTablesPersist(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA1"})
	cache := t.TempDir()
	o := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy, CacheDir: cache})
	if err := o.in.VerifyAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "chunks-*.bin"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v", files)
	}
	o2 := openPkg(t, path, IntegrityOptions{Mode: VerifyStrict, CacheDir: cache})
	f := o2.file1(t, "disk1.vmdk")
	if f.Status() != StatusVerified {
		t.Fatalf("the second mount is %s, want verified from the cache", f.Status())
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 2<<20); err != nil || !bytes.Equal(buf, disk[2<<20:2<<20+4096]) {
		t.Errorf("read checked against the cached table: %v", err)
	}

	// A damaged table file is discarded, with a warning.
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 1
	os.WriteFile(files[0], b, 0o600)
	o3 := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy, CacheDir: cache})
	if o3.file1(t, "disk1.vmdk").Status() != StatusPending || !strings.Contains(strings.Join(o3.in.Warnings(), "\n"), "discarded") {
		t.Errorf("a damaged cache was trusted: %s, %v", o3.file1(t, "disk1.vmdk").Status(), o3.in.Warnings())
	}

	// A touched archive (new mtime) has another identity.
	o4 := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy, CacheDir: cache})
	o4.in.VerifyAll(context.Background(), nil)
	future := time.Now().Add(time.Hour)
	os.Chtimes(path, future, future)
	o5 := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy, CacheDir: cache})
	if o5.file1(t, "disk1.vmdk").Status() != StatusPending {
		t.Error("a table was trusted for an archive whose mtime changed")
	}
}

func TestVerifyAllReports(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", flipDisk: true, unlisted: true})
	o := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy})
	var mu sync.Mutex
	var hashed int64
	total := o.in.ListedTotal()
	if err := o.in.VerifyAll(context.Background(), func(n int64) { mu.Lock(); hashed += n; mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if hashed != total || total < int64(len(disk)) {
		t.Errorf("progress reported %d of %d bytes", hashed, total)
	}
	if o.file1(t, "disk1.vmdk").Status() != StatusMismatch || o.file1(t, "app.ovf").Status() != StatusVerified {
		t.Errorf("statuses: disk %s, ovf %s", o.file1(t, "disk1.vmdk").Status(), o.file1(t, "app.ovf").Status())
	}
	cov := o.in.Coverage()
	if len(cov.Unlisted) != 1 || cov.Unlisted[0] != "extra.txt" {
		t.Errorf("coverage: %+v", cov)
	}
}

func TestDecodeTablesHostile(t *testing.T) {
	id := bytes.Repeat([]byte{7}, 32)
	good := encodeTables(map[string]*chunkTable{"d": {Name: "d", Size: 3 << 20, Algorithm: "SHA256", Digest: []byte{1, 2},
		Chunks: make([][32]byte, 3)}}, id)
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
	f.Add(encodeTables(map[string]*chunkTable{"d": {Name: "d", Size: 1, Algorithm: "SHA1", Digest: []byte{1}, Chunks: make([][32]byte, 1)}}, id))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeTables(b, id)
	})
}
