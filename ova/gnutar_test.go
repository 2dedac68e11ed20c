package ova

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// extractWithTar runs GNU tar -x on archive and returns every regular
// file it wrote, by path, with a digest of its contents.
func extractWithTar(t *testing.T, archive string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("tar", "-xf", archive, "-C", dir)
	cmd.Env = append(os.Environ(), "LANG=C")
	cmd.CombinedOutput() // damaged vectors make tar complain; what it wrote is the oracle
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = digest(b)
		}
		return nil
	})
	return out
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// ourFiles reads every regular member of the archive.
func ourFiles(t *testing.T, a *Archive) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range a.Files() {
		if m.Truncated() { // its claimed size may be absurd; vectors check it
			out[m.Name] = "truncated"
			continue
		}
		b := make([]byte, m.Size)
		if _, err := m.ReadAt(b, 0); err != nil && m.Size > 0 {
			out[m.Name] = "unreadable: " + err.Error()
			continue
		}
		out[m.Name] = digest(b)
	}
	return out
}

func compareWithTar(t *testing.T, archive string, a *Archive, differs []string) {
	t.Helper()
	theirs := extractWithTar(t, archive)
	ours := ourFiles(t, a)
	for name, d := range theirs {
		if slices.Contains(differs, name) {
			continue
		}
		if ours[name] != d {
			t.Errorf("%s: tar -x wrote %s, ovfmount reads %q", name, d, ours[name])
		}
	}
	for name := range ours {
		if _, ok := theirs[name]; !ok && !slices.Contains(differs, name) {
			t.Errorf("%s: mounted by ovfmount but not written by tar -x", name)
		}
	}
}

// TestVectorsAgainstGNUTar checks every test vector against what GNU tar
// itself extracts, so the vectors' expectations are not just our opinion.
func TestVectorsAgainstGNUTar(t *testing.T) {
	testutil.RequireTool(t, "tar")
	for _, v := range vectors {
		if v.err != nil {
			continue
		}
		t.Run(v.file, func(t *testing.T) {
			path := filepath.Join("testdata", v.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Open(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			compareWithTar(t, path, a, v.tarDiffers)
		})
	}
}

// makeTree writes a folder with what real archives carry: empty and odd
// sized files, long and UTF-8 names, deep folders, links and a sparse file.
func makeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{0, 1, 511, 512, 513, 100_000} {
		write(fmt.Sprintf("sizes/%d.bin", n), bytes.Repeat([]byte{byte(n)}, n))
	}
	write(strings.Repeat("deep/", 30)+"file.txt", []byte("deep"))
	write(strings.Repeat("x", 200)+".vmdk", []byte("long name"))
	write("Ünïcødé диск.ovf", []byte("<Envelope/>"))
	write("appliance/appliance.mf", []byte("SHA256(disk1.vmdk)= 00\n"))
	os.Symlink("appliance.mf", filepath.Join(dir, "appliance/link-to-mf"))
	os.Link(filepath.Join(dir, "appliance/appliance.mf"), filepath.Join(dir, "appliance/hardlink.mf"))
	// A sparse disk: data at 0, 1 MiB and the last block of 8 MiB.
	sp, err := os.Create(filepath.Join(dir, "sparse.raw"))
	if err != nil {
		t.Fatal(err)
	}
	sp.Truncate(8 << 20)
	for _, off := range []int64{0, 1 << 20, 8<<20 - 4096} {
		sp.WriteAt(bytes.Repeat([]byte("S"), 4096), off)
	}
	sp.Close()
	return dir
}

// TestGNUTarFormats indexes archives GNU tar writes in each of its formats
// (sparse variants included) and compares every file with tar -x.
func TestGNUTarFormats(t *testing.T) {
	testutil.RequireTool(t, "tar")
	src := makeTree(t)
	for _, args := range [][]string{
		{"--format=gnu"},
		{"--format=gnu", "--sparse"},
		{"--format=oldgnu", "--sparse"},
		{"--format=posix"},
		{"--format=posix", "--sparse", "--sparse-version=0.0"},
		{"--format=posix", "--sparse", "--sparse-version=0.1"},
		{"--format=posix", "--sparse", "--sparse-version=1.0"},
		{"--format=posix", "--transform=s,^\\./,appliance-1.0/,"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "a.ova")
			cmd := exec.Command("tar", append(append([]string{"-cf", archive, "-C", src}, args...), ".")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			f, err := os.Open(archive)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			a, err := Open(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range a.Warnings() {
				t.Errorf("warning: %s", w)
			}
			compareWithTar(t, archive, a, nil)
			prefix := ""
			if strings.Contains(args[len(args)-1], "transform") {
				prefix = "appliance-1.0/"
			}
			if m, ok := a.Lookup(prefix + "sparse.raw"); !ok || m.Sparse() != slices.Contains(args, "--sparse") {
				t.Errorf("sparse.raw: found %v, sparse %v", ok, ok && m.Sparse())
			}
			if m, ok := a.Lookup(prefix + "appliance/link-to-mf"); !ok || m.Type != TypeSymlink || m.Linkname != "appliance.mf" {
				t.Errorf("symlink: %+v", m)
			}
		})
	}
}
