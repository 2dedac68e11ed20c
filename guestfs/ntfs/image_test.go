package ntfs

import (
	"bytes"
	"encoding/binary"
	"flag"

	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// The test images are made by mkfs.ntfs and filled through ntfs-3g, the
// oracle the reader is compared with; nothing here is computed by the
// reader under test.

// mkfsNTFS makes an NTFS volume of size bytes in a sparse file.
func mkfsNTFS(t testing.TB, img string, size int64, args ...string) {
	t.Helper()
	testutil.RequireTool(t, "mkfs.ntfs")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"-F", "-Q", "-q"}, args...)
	if out, err := exec.Command("mkfs.ntfs", append(args, img)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ntfs %v: %v\n%s", args, err, out)
	}
}

// ntfs3g mounts img with ntfs-3g (kept in the foreground, so that the
// unmount can wait for it to write everything back) and returns the mount
// point and the function that unmounts it.
func ntfs3g(t testing.TB, img, opts string) (string, func()) {
	t.Helper()
	testutil.RequireTool(t, "ntfs-3g")
	testutil.RequireFUSE(t)
	dir, err := os.MkdirTemp("", "ntfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	o := "no_detach"
	if opts != "" {
		o += "," + opts
	}
	cmd := exec.Command("ntfs-3g", "-o", o, img, dir)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var parent, st unix.Stat_t
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if unix.Stat(dir, &st) == nil && st.Dev != parent.Dev {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("ntfs-3g -o %s %s did not mount: %s", o, img, log.String())
		}
	}
	done := false
	unmount := func() {
		if done {
			return
		}
		done = true
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			if out2, err2 := exec.Command("fusermount3", "-u", dir).CombinedOutput(); err2 != nil {
				t.Errorf("umount %s: %v: %s; fusermount3: %v: %s", dir, err, out, err2, out2)
				cmd.Process.Kill()
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("ntfs-3g: %v: %s", err, log.String())
		}
		os.Remove(dir)
	}
	return dir, unmount
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func command(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, msg)
	}
	return out
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, b, 0o644))
}

// setAttrib sets a file's Windows attributes through ntfs-3g.
func setAttrib(t testing.TB, p string, attrs uint32) {
	t.Helper()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], attrs)
	must(t, unix.Setxattr(p, "system.ntfs_attrib", b[:], 0))
}

// setReparse stores raw reparse data on an empty file or directory through
// ntfs-3g, which checks it.
func setReparse(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := unix.Setxattr(p, "system.ntfs_reparse_data", data, 0); err != nil {
		t.Fatalf("setting reparse data on %s: %v", p, err)
	}
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// reparseLink builds the reparse data of a Windows symlink (relative or
// not) or junction, as Windows' mklink writes them.
func reparseLink(tag uint32, sub, print string, relative bool) []byte {
	s, p := utf16le(sub), utf16le(print)
	var body []byte
	if tag == tagSymlink {
		var flags uint32
		if relative {
			flags = 1
		}
		body = binary.LittleEndian.AppendUint16(body, 0)
		body = binary.LittleEndian.AppendUint16(body, uint16(len(s)))
		body = binary.LittleEndian.AppendUint16(body, uint16(len(s)))
		body = binary.LittleEndian.AppendUint16(body, uint16(len(p)))
		body = binary.LittleEndian.AppendUint32(body, flags)
		body = append(append(body, s...), p...)
	} else {
		body = binary.LittleEndian.AppendUint16(body, 0)
		body = binary.LittleEndian.AppendUint16(body, uint16(len(s)))
		body = binary.LittleEndian.AppendUint16(body, uint16(len(s)+2))
		body = binary.LittleEndian.AppendUint16(body, uint16(len(p)))
		body = append(append(append(append(body, s...), 0, 0), p...), 0, 0)
	}
	h := binary.LittleEndian.AppendUint32(nil, tag)
	h = binary.LittleEndian.AppendUint16(h, uint16(len(body)))
	h = binary.LittleEndian.AppendUint16(h, 0)
	return append(h, body...)
}

// copyTree copies regular files, directories and symlinks from src to dst,
// in a fixed order, until about budget bytes are copied, skipping files
// over 1 MiB; it keeps the files' modification and access times.
func copyTree(t testing.TB, src, dst string, budget int64) int {
	t.Helper()
	var paths []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != src {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	n := 0
	for _, p := range paths {
		if budget <= 0 {
			break
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		switch {
		case fi.IsDir():
			must(t, os.MkdirAll(out, 0o755))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				continue
			}
			must(t, os.MkdirAll(filepath.Dir(out), 0o755))
			must(t, os.Symlink(target, out))
			n++
		case fi.Mode().IsRegular() && fi.Size() <= 1<<20:
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			writeFile(t, out, b)
			st := fi.Sys().(*syscall.Stat_t)
			must(t, os.Chtimes(out, time.Unix(st.Atim.Unix()), fi.ModTime()))
			budget -= fi.Size()
			n++
		}
	}
	return n
}

// imageCache holds the images built once per test run.
var (
	imageDir   string
	imageCache = map[string]string{}
)

func TestMain(m *testing.M) {
	// A fuzz input is a volume of kilobytes: minimizing each new find for
	// the default 60 s would leave a one-minute run no time to fuzz. An
	// explicit -fuzzminimizetime still wins, as flags are parsed later.
	if f := flag.Lookup("test.fuzzminimizetime"); f != nil {
		f.Value.Set("3s")
	}
	code := m.Run()
	if imageDir != "" {
		os.RemoveAll(imageDir)
	}
	os.Exit(code)
}

// cachedImage returns the image called name, building it with build the
// first time.
func cachedImage(t testing.TB, name string, build func(t testing.TB, img string)) string {
	t.Helper()
	if p, ok := imageCache[name]; ok {
		return p
	}
	if imageDir == "" {
		var err error
		if imageDir, err = os.MkdirTemp("", "ntfs-test-"); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(imageDir, name+".img")
	start := time.Now()
	build(t, p)
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("image %s built in %v", name, time.Since(start).Round(time.Millisecond))
	imageCache[name] = p
	return p
}

// walkCache holds the walk of each image, which several tests compare.
var walkCache = map[string]map[string]*guestfstest.Node{}

// walkImage walks img through the reader once per test run.
func walkImage(t testing.TB, img string) map[string]*guestfstest.Node {
	t.Helper()
	if w, ok := walkCache[img]; ok {
		return w
	}
	start := time.Now()
	w := guestfstest.Walk(t, openImage(t, img), 100000)
	t.Logf("walked %d paths of %s in %v", len(w), filepath.Base(img), time.Since(start).Round(time.Millisecond))
	walkCache[img] = w
	return w
}

// openImage opens an image file with the reader under test.
func openImage(t testing.TB, img string) *FS {
	t.Helper()
	f, err := os.Open(img)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	must(t, err)
	fsys, err := Open(f, st.Size())
	if err != nil {
		t.Fatalf("Open %s: %v", img, err)
	}
	return fsys
}
