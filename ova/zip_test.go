package ova

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// zipFixture is a package folder like the ones vendors zip: a descriptor,
// a manifest, a disk of random bytes, and small files in a subfolder.
func zipFixture(t *testing.T, diskSize int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "appliance")
	files := map[string][]byte{
		"appliance.ovf":       []byte(strings.Repeat("<Envelope><File ovf:href=\"disk1.vmdk\"/></Envelope>\n", 200)),
		"appliance.mf":        []byte("SHA256(appliance.ovf)= 00\nSHA256(disk1.vmdk)= 11\n"),
		"disk1.vmdk":          randomData(diskSize, 1),
		"docs/README.txt":     []byte(strings.Repeat("read me\n", 5000)),
		"docs/empty.txt":      nil,
		"docs/deep/notes.txt": []byte("notes"),
		"docs/ünïcödé.txt":    []byte("the zip tool stores this name's UTF-8 bytes, unflagged"),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("appliance.ovf", filepath.Join(dir, "link.ovf")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func randomData(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// runZip zips dir's contents with the zip tool and the given flags.
func runZip(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	tool := testutil.RequireTool(t, "zip")
	out := filepath.Join(t.TempDir(), "out.zip")
	args := append(append([]string{"-q", "-r", "-y"}, flags...), out, ".")
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zip %v: %v\n%s", flags, err, b)
	}
	return out
}

func openZipFile(t *testing.T, path string, opt ZipOptions) *Archive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	a, err := OpenZip(f, st.Size(), opt)
	if err != nil {
		t.Fatalf("OpenZip: %v", err)
	}
	return a
}

func openZipBytes(t *testing.T, b []byte) (*Archive, error) {
	t.Helper()
	return OpenZip(bytes.NewReader(b), int64(len(b)), ZipOptions{})
}

// readAll reads a member in one ReadAt into a buffer of its size (a
// growing buffer costs much under the race detector).
func readAll(t *testing.T, m *Member) []byte {
	t.Helper()
	b := make([]byte, m.Size)
	n, err := m.ReadAt(b, 0)
	if n != len(b) || err != nil && err != io.EOF {
		t.Fatalf("%s: %d of %d bytes, %v", m.Name, n, len(b), err)
	}
	return b
}

// checkAgainstUnzip compares the archive's files and symlinks with what
// unzip lists and extracts: the same names, and every file byte for byte
// (unzip -p), and a few random reads of each file.
func checkAgainstUnzip(t *testing.T, path string, a *Archive) {
	t.Helper()
	unzip := testutil.RequireTool(t, "unzip")
	out, err := exec.Command(unzip, "-Z1", path).Output()
	if err != nil {
		t.Fatalf("unzip -Z1: %v", err)
	}
	var want []string
	for _, n := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if n = strings.TrimPrefix(strings.TrimSuffix(n, "/"), "./"); n != "" && n != "." {
			want = append(want, n)
		}
	}
	var got []string
	for _, m := range a.Members() {
		if m.HeaderOffset >= 0 {
			got = append(got, m.Name)
		}
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("members\n%s\nunzip lists\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rng := rand.New(rand.NewSource(7))
	for _, m := range a.Files() {
		exp, err := exec.Command(unzip, "-p", path, m.Name).Output()
		if err != nil {
			// unzip -p takes wildcards; names here have none.
			t.Fatalf("unzip -p %s: %v", m.Name, err)
		}
		if got := readAll(t, m); !bytes.Equal(got, exp) {
			t.Fatalf("%s: %d bytes differ from unzip's %d", m.Name, len(got), len(exp))
		}
		if err := m.Prepare(t.Context(), nil); err != nil {
			t.Fatalf("%s: Prepare: %v", m.Name, err)
		}
		for range 20 {
			if len(exp) == 0 {
				break
			}
			off := rng.Int63n(int64(len(exp)))
			p := make([]byte, 1+rng.Intn(8192))
			n, err := m.ReadAt(p, off)
			if err != nil && err != io.EOF || !bytes.Equal(p[:n], exp[off:off+int64(n)]) || n < len(p) && int64(n) != int64(len(exp))-off {
				t.Fatalf("%s: ReadAt(%d, %d) = %d, %v", m.Name, len(p), off, n, err)
			}
		}
	}
	for _, m := range a.Members() {
		if m.Type == TypeSymlink {
			target, err := os.Readlink(filepath.Join(extractDir(t, path), m.Name))
			if err != nil || target != m.Linkname {
				t.Fatalf("%s: symlink to %q, unzip made %q (%v)", m.Name, m.Linkname, target, err)
			}
		}
	}
}

var extracted sync.Map

func extractDir(t *testing.T, path string) string {
	if d, ok := extracted.Load(path); ok {
		return d.(string)
	}
	d := t.TempDir()
	if b, err := exec.Command(testutil.RequireTool(t, "unzip"), "-q", path, "-d", d).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, b)
	}
	extracted.Store(path, d)
	return d
}

// TestZipTool indexes archives the zip tool makes, with every storage it
// offers, and checks them against unzip.
func TestZipTool(t *testing.T) {
	dir := zipFixture(t, 20<<20/raceScale)
	disk, _ := os.ReadFile(filepath.Join(dir, "disk1.vmdk"))
	for _, flags := range [][]string{nil, {"-0"}, {"-9"}, {"-1", "-fz"}, {"-X"}} {
		t.Run(strings.Join(append([]string{"zip"}, flags...), " "), func(t *testing.T) {
			path := runZip(t, dir, flags...)
			a := openZipFile(t, path, ZipOptions{})
			for _, w := range a.Warnings() {
				t.Errorf("warning: %s", w)
			}
			checkAgainstUnzip(t, path, a)
			m, ok := a.Lookup("disk1.vmdk")
			if !ok || !bytes.Equal(readAll(t, m), disk) {
				t.Fatal("disk1.vmdk differs")
			}
			_, _, contiguous := m.Contiguous()
			stored := len(flags) > 0 && flags[0] == "-0"
			if contiguous != stored {
				t.Fatalf("Contiguous = %v for a stored=%v member", contiguous, stored)
			}
			// Only a stored member's bytes are the archive file's, for splicing.
			if _, ok := m.HostRanges(4096, 8192); ok != stored {
				t.Fatalf("HostRanges ok = %v for a stored=%v member", ok, stored)
			}
			if m.StoredSize() != m.Size || m.Sparse() || m.Truncated() {
				t.Fatalf("StoredSize %d Sparse %v Truncated %v", m.StoredSize(), m.Sparse(), m.Truncated())
			}
			if flags == nil {
				ovf, _ := a.Lookup("appliance.ovf")
				if ovf.Mode != 0o640 || ovf.ModTime.IsZero() || time.Since(ovf.ModTime) > time.Hour {
					t.Fatalf("appliance.ovf: mode %o, mtime %v", ovf.Mode, ovf.ModTime)
				}
				if d, _ := a.Lookup("emptydir"); d == nil || d.Type != TypeDir || d.Mode != 0o750 {
					t.Fatalf("emptydir: %+v", d)
				}
				if l, _ := a.Lookup("link.ovf"); l == nil || l.Type != TypeSymlink || l.Linkname != "appliance.ovf" {
					t.Fatalf("link.ovf: %+v", l)
				}
			}
		})
	}
}

// TestZipRandomReads reads a deflated disk at random offsets, from many
// goroutines at once, the first of them racing to build its index.
func TestZipRandomReads(t *testing.T) {
	dir := t.TempDir()
	var data []byte
	for i := 0; len(data) < 12<<20/raceScale; i++ {
		data = append(data, []byte(strings.Repeat("block ", i%50))...)
		data = append(data, randomData(1000+i%3000, int64(i))...)
	}
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	fw, _ := w.CreateHeader(&zip.FileHeader{Name: "disk.vmdk", Method: zip.Deflate})
	fw.Write(data)
	w.Close()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	a, err := OpenZip(bytes.NewReader(buf.Bytes()), int64(buf.Len()), ZipOptions{Span: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := a.Lookup("disk.vmdk")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			p := make([]byte, 4096)
			for range 40 {
				off := rng.Int63n(int64(len(data)))
				n, err := m.ReadAt(p, off)
				if err != nil && err != io.EOF || !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					errs <- errors.New("wrong bytes")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// goZip writes entries with archive/zip: name, method, content, and
// whether to write it raw (sizes in the local header, no data
// descriptor) rather than streamed (flag bit 3).
type goEntry struct {
	name   string
	method uint16
	data   []byte
	raw    bool
	mode   os.FileMode
}

func goZip(t testing.TB, entries ...goEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: e.method, Modified: time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		if !e.raw {
			fw, err := w.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			fw.Write(e.data)
			continue
		}
		body := e.data
		if e.method == zip.Deflate {
			var c bytes.Buffer
			fw, _ := flate.NewWriter(&c, 6)
			fw.Write(e.data)
			fw.Close()
			body = c.Bytes()
		}
		h.CRC32 = crc32IEEE(e.data)
		h.CompressedSize64 = uint64(len(body))
		h.UncompressedSize64 = uint64(len(e.data))
		fw, err := w.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(body)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestZipGoWriter covers archive/zip's output: streamed entries with data
// descriptors, raw ones without, stored and deflated, and checks every
// byte, the modes and times, and the implied directories.
func TestZipGoWriter(t *testing.T) {
	big := randomData(3<<20, 3)
	text := []byte(strings.Repeat("descriptor text ", 10000))
	b := goZip(t,
		goEntry{name: "pkg/a.ovf", method: zip.Deflate, data: text, mode: 0o600},
		goEntry{name: "pkg/disk.vmdk", method: zip.Store, data: big},
		goEntry{name: "pkg/raw-deflate.bin", method: zip.Deflate, data: text, raw: true},
		goEntry{name: "pkg/raw-store.bin", method: zip.Store, data: big[:1000], raw: true},
		goEntry{name: "pkg/empty", method: zip.Deflate},
		goEntry{name: "pkg/dir/", method: zip.Store},
	)
	a, err := openZipBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Warnings()) != 0 {
		t.Fatalf("warnings: %v", a.Warnings())
	}
	path := filepath.Join(t.TempDir(), "go.zip")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	checkAgainstUnzip(t, path, a)
	want := map[string][]byte{"pkg/a.ovf": text, "pkg/disk.vmdk": big, "pkg/raw-deflate.bin": text, "pkg/raw-store.bin": big[:1000], "pkg/empty": nil}
	for name, data := range want {
		m, ok := a.Lookup(name)
		if !ok || !bytes.Equal(readAll(t, m), data) {
			t.Fatalf("%s differs", name)
		}
		if err := m.Prepare(t.Context(), nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(name, "pkg/raw-") && !m.ModTime.Equal(time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)) {
			t.Fatalf("%s: mtime %v", name, m.ModTime)
		}
	}
	if m, _ := a.Lookup("pkg/a.ovf"); m.Mode != 0o600 {
		t.Fatalf("mode %o", m.Mode)
	}
	if m, _ := a.Lookup("pkg/disk.vmdk"); m.HeaderOffset < 0 {
		t.Fatal("no header offset")
	} else if src, phys, ok := m.Contiguous(); !ok || src == nil || phys <= m.HeaderOffset {
		t.Fatal("a stored member is not contiguous")
	}
	if d, _ := a.Lookup("pkg"); d.Type != TypeDir || d.HeaderOffset != -1 {
		t.Fatalf("implied pkg: %+v", d)
	}
	if d, _ := a.Lookup("pkg/dir"); d.Type != TypeDir || len(a.Children(d)) != 0 {
		t.Fatalf("pkg/dir: %+v", d)
	}
}

// TestZipEager builds everything up front, with progress, and reports a
// damaged entry by name; the lazy path fails every read the same way.
func TestZipEager(t *testing.T) {
	text := []byte(strings.Repeat("eager text ", 50000))
	b := goZip(t, goEntry{name: "good.txt", method: zip.Deflate, data: text}, goEntry{name: "bad.txt", method: zip.Deflate, data: text, raw: true},
		goEntry{name: "stored.txt", method: zip.Store, data: text, raw: true})
	var seen sync.Map
	a, err := OpenZip(bytes.NewReader(b), int64(len(b)), ZipOptions{Eager: true, Progress: func(m *Member, done, total int64) { seen.Store(m.Name, done == total) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"good.txt", "bad.txt", "stored.txt"} {
		if v, ok := seen.Load(n); !ok || !v.(bool) {
			t.Fatalf("no final progress for %s", n)
		}
	}
	_ = a
	// Damage bad.txt's deflate data and stored.txt's bytes.
	m, _ := a.Lookup("bad.txt")
	d := bytes.Clone(b)
	d[m.zip.dataOff+m.zip.csize/2] ^= 0x55
	s, _ := a.Lookup("stored.txt")
	d[s.zip.dataOff+10] ^= 1
	_, err = OpenZip(bytes.NewReader(d), int64(len(d)), ZipOptions{Eager: true})
	if !errors.Is(err, ErrZipCorrupt) || !strings.Contains(err.Error(), "bad.txt") || !strings.Contains(err.Error(), "stored.txt") {
		t.Fatalf("eager open of a damaged zip: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := OpenZip(bytes.NewReader(b), int64(len(b)), ZipOptions{Eager: true, Context: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	lazy, err := openZipBytes(t, d)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := lazy.Lookup("bad.txt")
	for range 3 {
		if _, err := bad.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrZipCorrupt) {
			t.Fatalf("read of damaged entry: %v", err)
		}
	}
	if good, _ := lazy.Lookup("good.txt"); !bytes.Equal(readAll(t, good), text) {
		t.Fatal("good.txt differs")
	}
}

// TestZipManyDeflated reads more deflated entries than keep decoders, from
// several goroutines, twice: evicted entries serve again from their index.
func TestZipManyDeflated(t *testing.T) {
	var es []goEntry
	for i := range 3 * maxActiveInflates {
		es = append(es, goEntry{name: strings.Repeat("x", i+1), method: zip.Deflate, data: []byte(strings.Repeat(string(rune('a'+i%26)), 1000*(i+1)))})
	}
	a, err := openZipBytes(t, goZip(t, es...))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 2 {
				for i := range es {
					e := es[(i+g*7+round)%len(es)]
					m, _ := a.Lookup(e.name)
					b, err := io.ReadAll(m.Open())
					if err != nil || !bytes.Equal(b, e.data) {
						t.Errorf("%s: %v", e.name, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	kept := func() int {
		activeInflates.mu.Lock()
		defer activeInflates.mu.Unlock()
		n := 0
		for _, l := range activeInflates.list {
			for _, m := range a.Files() {
				if m.zip.inflate == l {
					n++
				}
			}
		}
		return n
	}
	if n := kept(); n > maxActiveInflates || n == 0 {
		t.Fatalf("%d entries keep decoders", n)
	}
	a.Close()
	if n := kept(); n != 0 {
		t.Fatalf("%d entries keep decoders after Close", n)
	}
}

// TestZipCacheDir keeps a deflated entry's index between runs: the second
// open loads it instead of a pass over the entry, and a damaged saved
// index is replaced.
func TestZipCacheDir(t *testing.T) {
	data := randomData(3<<20, 11)
	b := goZip(t, goEntry{name: "disk.vmdk", method: zip.Deflate, data: data})
	dir := t.TempDir()
	opt := ZipOptions{CacheDir: dir, Source: []byte("the archive's identity")}
	passes := func() int {
		a, err := OpenZip(bytes.NewReader(b), int64(len(b)), opt)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := a.Lookup("disk.vmdk")
		calls := 0
		if err := m.Prepare(t.Context(), func(done, total int64) { calls++ }); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, m), data) {
			t.Fatal("disk.vmdk differs")
		}
		return calls
	}
	if n := passes(); n < 2 {
		t.Fatalf("first run: %d progress calls, want a pass", n)
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "zipindex-*.bin"))
	if len(saved) != 1 {
		t.Fatalf("saved %v", saved)
	}
	if n := passes(); n != 1 {
		t.Fatalf("second run: %d progress calls, want the saved index", n)
	}
	os.WriteFile(saved[0], []byte("garbage"), 0o600)
	if n := passes(); n < 2 {
		t.Fatalf("damaged cache: %d progress calls", n)
	}
	if n := passes(); n != 1 {
		t.Fatal("the damaged index was not replaced")
	}
	opt.Source = nil
	if n := passes(); n < 2 {
		t.Fatal("without a source identity, an index was loaded")
	}
}
