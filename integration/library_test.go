package integration

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// tinyOVA writes an OVA of a descriptor, a manifest and one small file
// whose bytes name i, so that every archive of a library differs.
func tinyOVA(t testing.TB, path string, i int) {
	t.Helper()
	data := []byte(fmt.Sprintf("archive %d\n", i))
	desc := []byte(`<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">` +
		fmt.Sprintf(`<References><File ovf:id="f1" ovf:href="notes.txt" ovf:size="%d"/></References></Envelope>`, len(data)))
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	mf := []byte(fmt.Sprintf("SHA256(app.ovf)= %s\nSHA256(notes.txt)= %s\n", sum(desc), sum(data)))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := tar.NewWriter(f)
	for _, m := range []struct {
		name string
		b    []byte
	}{{"app.ovf", desc}, {"app.mf", mf}, {"notes.txt", data}} {
		w.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.b)), Typeflag: tar.TypeReg, ModTime: time.Unix(1e9, 0)})
		w.Write(m.b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestLibrary mounts a folder of archives and more archives named beside
// it: one folder each, named after the archive, clashing names with a
// stable suffix, each opened on first look. A broken archive fails its
// folder only and says why in its attributes; files that are no archive
// are left out.
func TestLibrary(t *testing.T) {
	testutil.RequireFUSE(t)
	lib := t.TempDir()
	tinyOVA(t, filepath.Join(lib, "alpha.ova"), 1)
	tinyOVA(t, filepath.Join(lib, "beta.ova"), 2)
	compressWith(t, filepath.Join(lib, "beta.ova"), filepath.Join(lib, "gamma.ova.gz"), "gzip", "-c")
	os.WriteFile(filepath.Join(lib, "README.txt"), []byte("not an archive\n"), 0o644)
	os.WriteFile(filepath.Join(lib, "broken.ova.gz"), []byte("\x1f\x8b\x08\x00 truncated"), 0o644)
	other := t.TempDir()
	tinyOVA(t, filepath.Join(other, "alpha.ova"), 3)

	m := mountArchive(t, filepath.Join(other, "alpha.ova"), lib)
	des, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if len(names) != 5 || names[2] != "beta" || names[3] != "broken" || names[4] != "gamma" ||
		!strings.HasPrefix(names[0], "alpha~") || !strings.HasPrefix(names[1], "alpha~") {
		t.Fatalf("library folders %v, want alpha~X, alpha~Y, beta, broken, gamma", names)
	}
	// Nothing is opened before it is looked into.
	if got := xattr(t, m.path("beta"), "user.ovfmount.state"); got != "closed" {
		t.Errorf("beta before any look: state %q, want closed", got)
	}
	for i, name := range names[:2] {
		src := xattr(t, m.path(name), "user.ovfmount.source")
		want := map[bool]string{true: "archive 3\n", false: "archive 1\n"}[strings.HasPrefix(src, other)]
		if got := readFile(m.path(name + "/notes.txt")); got != want {
			t.Errorf("%s (%s): notes.txt %q, want %q", name, src, got, want)
		}
		// The suffix comes from the source, so it is the same next time.
		if i == 0 && names[0] == names[1] {
			t.Errorf("clashing folders share a name")
		}
	}
	if got := readFile(m.path("gamma/notes.txt")); got != "archive 2\n" {
		t.Errorf("gamma (gzip) notes.txt %q", got)
	}
	if !waitFor(5*time.Second, func() bool { return xattr(t, m.path("gamma/notes.txt"), "user.ovfmount.verify") == "verified" }) {
		t.Errorf("gamma/notes.txt: verify %q, want verified", xattr(t, m.path("gamma/notes.txt"), "user.ovfmount.verify"))
	}
	if got := xattr(t, m.path("beta"), "user.ovfmount.state"); got != "closed" {
		t.Errorf("beta, never looked into: state %q, want closed", got)
	}
	if _, err := os.ReadDir(m.path("broken")); err == nil {
		t.Errorf("listing a broken archive's folder succeeded")
	}
	if got := xattr(t, m.path("broken"), "user.ovfmount.state"); got != "failed" {
		t.Errorf("broken: state %q, want failed", got)
	}
	if got := xattr(t, m.path("broken"), "user.ovfmount.error"); !strings.Contains(got, "gzip") {
		t.Errorf("broken: error %q does not say what is wrong", got)
	}
	// The others still work after one failed.
	if got := readFile(m.path("beta/notes.txt")); got != "archive 2\n" {
		t.Errorf("beta after broken: %q", got)
	}
	if !strings.Contains(readFile(m.logFile), "broken.ova.gz") {
		t.Errorf("the log does not name the broken archive:\n%s", readFile(m.logFile))
	}
}

// TestLibraryOfAThousand mounts a folder of 1,000 archives: the mount is
// ready after listing them, and a find of the whole tree opens each and
// lists every file.
func TestLibraryOfAThousand(t *testing.T) {
	testutil.RequireFUSE(t)
	lib := t.TempDir()
	const n = 1000
	for i := range n {
		tinyOVA(t, filepath.Join(lib, fmt.Sprintf("appliance-%04d.ova", i)), i)
	}
	start := time.Now()
	m := mountArchive(t, lib)
	ready := time.Since(start)
	start = time.Now()
	out, err := exec.Command("find", m.dir, "-type", "f").Output()
	if err != nil {
		t.Fatal(err)
	}
	files := strings.Count(string(out), "\n")
	t.Logf("1,000 archives: mount ready in %v, find of %d files in %v", ready.Round(time.Millisecond), files, time.Since(start).Round(time.Millisecond))
	if files != 3*n {
		t.Fatalf("find listed %d files, want %d (3 per archive)", files, 3*n)
	}
	if got := readFile(m.path("appliance-0777/notes.txt")); got != "archive 777\n" {
		t.Errorf("appliance-0777/notes.txt = %q", got)
	}
}
