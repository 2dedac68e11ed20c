package integration

import (
	"bytes"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// compareWithTar checks that the mount holds exactly the regular files GNU
// tar lists, each byte-identical to tar -xO, with the same size.
func compareWithTar(t *testing.T, archive string, m *mountResult) map[string][]byte {
	t.Helper()
	want := tarMembers(t, archive)
	got := map[string]bool{}
	filepath.WalkDir(m.dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(m.dir, p)
		if err == nil && d.IsDir() && (strings.HasPrefix(rel, "disks") || strings.HasPrefix(rel, "files")) && !strings.Contains(rel, "/") && !holdsMembers(want, rel) {
			return filepath.SkipDir // the decoded disk views and guest files, not archive members
		}
		if err == nil && d.Type().IsRegular() {
			got[rel] = true
		}
		return nil
	})
	contents := map[string][]byte{}
	var extracted string // a tar -x of the archive, for hard links
	for name, size := range want {
		if !got[name] {
			t.Errorf("%s: listed by tar, missing from the mount", name)
			continue
		}
		mine, err := os.ReadFile(m.path(name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		theirs := tarExtract(t, archive, name)
		if size < 0 { // tar -xO writes nothing for a hard link; tar -x does
			if extracted == "" {
				extracted = t.TempDir()
				exec.Command("tar", "-xf", archive, "-C", extracted).Run()
			}
			theirs, _ = os.ReadFile(filepath.Join(extracted, name))
		}
		if (size >= 0 && int64(len(mine)) != size) || !bytes.Equal(mine, theirs) {
			t.Errorf("%s: %d bytes through the mount differ from tar -xO (%d bytes)", name, len(mine), len(theirs))
		}
		contents[name] = theirs
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: in the mount but not listed by tar", name)
		}
	}
	return contents
}

func holdsMembers(members map[string]int64, dir string) bool {
	for name := range members {
		if strings.HasPrefix(name, dir+"/") {
			return true
		}
	}
	return false
}

// checkRandomReads reads each file at random offsets and lengths with
// pread, plus its first and last byte and a read across its end (which
// must come back short), against the oracle bytes.
func checkRandomReads(t *testing.T, m *mountResult, contents map[string][]byte, reads int) {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	for name, want := range contents {
		f, err := os.Open(m.path(name))
		if err != nil {
			t.Fatal(err)
		}
		size := int64(len(want))
		check := func(off int64, n int) {
			got := pread(t, f, n, off)
			end := min(off+int64(n), size)
			if off > size {
				end = off
			}
			if !bytes.Equal(got, want[min(off, size):end]) {
				t.Errorf("%s: pread(%d bytes at %d) returned %d bytes that differ", name, n, off, len(got))
			}
		}
		if size > 0 {
			check(0, 1)
			check(size-1, 1)
			check(max(0, size-100), 4096) // across the end: a short read
		}
		check(size, 10) // at the end: nothing
		for range reads {
			if size == 0 {
				break
			}
			check(rng.Int63n(size), 1+rng.Intn(300_000))
		}
		f.Close()
	}
}

// TestRealOVAs mounts every .ova under the real-world fixtures, made by
// other projects' tools, and compares each member with tar -xO. The one
// that is not a tar must be refused clearly.
func TestRealOVAs(t *testing.T) {
	testutil.RequireTool(t, "tar")
	root := testutil.RealFixtures(t)
	var archives []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ova") {
			archives = append(archives, p)
		}
		return nil
	})
	if len(archives) == 0 {
		t.Fatalf("no .ova under %s", root)
	}
	for _, archive := range archives {
		t.Run(filepath.Base(archive), func(t *testing.T) {
			if exec.Command("tar", "-tf", archive).Run() != nil {
				code, out := runOvfmount(t, archive, t.TempDir())
				if code != 2 || !strings.Contains(out, "not an OVA") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
					t.Errorf("a file tar cannot read: exit %d, output %q; want exit 2 and one line saying it is not an OVA", code, out)
				}
				return
			}
			m := mountArchive(t, archive)
			contents := compareWithTar(t, archive, m)
			checkRandomReads(t, m, contents, 50)
		})
	}
}

// makeTree writes a folder like the ones appliances are made from, with
// files of awkward sizes, long and UTF-8 names, a hard link, a symlink, a
// sparse disk and a larger disk of real bytes.
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
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 511, 512, 513, 65537} {
		b := make([]byte, n)
		rng.Read(b)
		write("sizes/"+strings.Repeat("s", n%7+1)+"-"+itoa(n)+".bin", b)
	}
	write("appliance.ovf", []byte("<Envelope/>\n"))
	write("appliance.mf", []byte("SHA256(appliance.ovf)= 00\n"))
	write(strings.Repeat("long-name-", 15)+".vmdk", []byte("long"))
	write("Ünïcødé диск.vmdk", []byte("utf8"))
	big := make([]byte, 8<<20+12345)
	rng.Read(big)
	write("disk1.vmdk", big)
	os.Link(filepath.Join(dir, "appliance.mf"), filepath.Join(dir, "hardlink.mf"))
	os.Symlink("appliance.ovf", filepath.Join(dir, "link.ovf"))
	f, _ := os.Create(filepath.Join(dir, "sparse.raw"))
	f.Truncate(16 << 20) // holes around a run of data: GNU and PAX sparse maps
	f.WriteAt(bytes.Repeat([]byte("D"), 1<<20), 6<<20)
	f.Close()
	return dir
}

func itoa(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestGNUTarArchives mounts archives GNU tar writes in each format, and
// one wrapped in a top-level folder, and reads them at random.
func TestGNUTarArchives(t *testing.T) {
	testutil.RequireTool(t, "tar")
	src := makeTree(t)
	for _, args := range [][]string{
		{"--format=ustar"},
		{"--format=gnu", "--sparse"},
		{"--format=posix", "--sparse"},
		{"--format=posix", "--transform=s,^\\.,appliance-1.0,"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "a.ova")
			cmd := exec.Command("tar", append(append([]string{"-cf", archive, "-C", src}, args...), ".")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				if args[0] == "--format=ustar" && strings.Contains(string(out), "too long") {
					// ustar cannot store the long name: rebuild without it.
					cmd = exec.Command("tar", "-cf", archive, "-C", src, "--format=ustar", "--exclude=long-name-*", ".")
					out, err = cmd.CombinedOutput()
				}
				if err != nil {
					t.Fatalf("tar: %v\n%s", err, out)
				}
			}
			m := mountArchive(t, archive)
			contents := compareWithTar(t, archive, m)
			checkRandomReads(t, m, contents, 40)
			prefix := ""
			if strings.Contains(args[len(args)-1], "transform") {
				prefix = "appliance-1.0/"
			}
			if target, err := os.Readlink(m.path(prefix + "link.ovf")); err != nil || target != "appliance.ovf" {
				t.Errorf("symlink: %q, %v", target, err)
			}
		})
	}
}

// TestParallelReaders has many goroutines read random ranges of several
// members at once, through one mount.
func TestParallelReaders(t *testing.T) {
	testutil.RequireTool(t, "tar")
	src := makeTree(t)
	archive := filepath.Join(t.TempDir(), "a.ova")
	if out, err := exec.Command("tar", "--format=posix", "-cf", archive, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	m := mountArchive(t, archive)
	names := []string{"disk1.vmdk", "sparse.raw", "appliance.ovf", "sizes/sss-513.bin"}
	want := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		want[n] = b
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			files := map[string]*os.File{}
			for _, n := range names {
				f, err := os.Open(m.path(n))
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				files[n] = f
			}
			for range 100 {
				n := names[rng.Intn(len(names))]
				w := want[n]
				off := rng.Int63n(int64(len(w)))
				size := 1 + rng.Intn(1<<20)
				buf := make([]byte, size)
				k, err := files[n].ReadAt(buf, off)
				end := min(off+int64(size), int64(len(w)))
				if k != int(end-off) || !bytes.Equal(buf[:k], w[off:end]) {
					t.Errorf("%s: ReadAt(%d, %d) = %d bytes, %v; contents differ", n, size, off, k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
