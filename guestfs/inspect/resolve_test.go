package inspect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/internal/hostfs"
)

// kernelResolve is the oracle: the host kernel resolving path with the
// folder root as its root (openat2 RESOLVE_IN_ROOT: absolute links and
// ".." are kept inside it, as in a chroot), giving the inode or the errno.
func kernelResolve(t testing.TB, rootFd int, path string, follow bool) (uint64, error) {
	t.Helper()
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	for {
		fd, err := unix.Openat2(rootFd, path, &unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		return st.Ino, nil
	}
}

// errnoOf is the errno the guest's kernel gives for one of our errors.
func errnoOf(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrLoop):
		return unix.ELOOP
	case errors.Is(err, guestfs.ErrNotDir):
		return unix.ENOTDIR
	case errors.Is(err, guestfs.ErrNotExist):
		return unix.ENOENT
	}
	return err
}

// compareWithKernel resolves path both ways and checks that the inode or
// the error is the kernel's.
func compareWithKernel(t testing.TB, h *hostfs.FS, rootFd int, path string) {
	t.Helper()
	for _, follow := range []bool{true, false} {
		want, werr := kernelResolve(t, rootFd, path, follow)
		var got uint64
		var err error
		if follow {
			got, err = Resolve(h, path)
		} else {
			got, err = Lresolve(h, path)
		}
		if gerr := errnoOf(err); gerr != werr || got != want {
			t.Errorf("resolve %q (follow %v) = %d, %v; the kernel says %d, %v", path, follow, got, err, want, werr)
		}
	}
}

func openRoot(t testing.TB, dir string) (*hostfs.FS, int) {
	t.Helper()
	h, err := hostfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); unix.Close(fd) })
	return h, fd
}

// hostileTree lays out the links a damaged or malicious guest may hold
// beside the ones every Debian system has.
func hostileTree(t testing.TB, dir string) {
	t.Helper()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := func(p, content string) {
		mk(filepath.Dir(p))
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		mk(filepath.Dir(p))
		if err := os.Symlink(target, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	file("usr/lib/os-release", "ID=guest\n")
	file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	file("usr/bin/sh", "not elf")
	link("../usr/lib/os-release", "etc/os-release")
	link("usr/lib", "lib")
	link("usr/bin", "bin")
	link("loop", "etc/loop")
	link("b", "etc/a")
	link("a", "etc/b")
	link("/../../etc/passwd", "etc/abs")
	link("../../../../../../etc/passwd", "etc/rel-up")
	link("../../../..", "etc/up")
	link("/", "etc/root")
	link("passwd/", "etc/trailing")
	link("/etc/abs", "etc/abs2")
	link("nowhere", "etc/dangling")
	// A chain of 41 links: chain/0 -> 1 -> ... -> 40 -> /etc/passwd. From
	// chain/0 it is 41 links (ELOOP), from chain/1 it is 40 (allowed).
	for i := 0; i <= 40; i++ {
		target := fmt.Sprint(i + 1)
		if i == 40 {
			target = "/etc/passwd"
		}
		link(target, fmt.Sprintf("chain/%d", i))
	}
	// A link through directories of links: every step is a link to a dir.
	link("../d2", "dirs/d1")
	mk("dirs/real")
	link("real", "dirs/d2")
	file("dirs/real/f", "f")
}

func TestResolveMatchesKernel(t *testing.T) {
	dir := t.TempDir()
	hostileTree(t, dir)
	h, rootFd := openRoot(t, dir)
	paths := []string{
		"/", "", ".", "..", "/..", "/../..", "etc/os-release", "/etc/os-release", "/lib/os-release",
		"/etc/loop", "/etc/a", "/etc/abs", "/etc/abs2", "/etc/rel-up", "/etc/up/etc/passwd", "/etc/up/..",
		"/etc/root/etc/root/etc/os-release", "/etc/trailing", "/etc/passwd/", "/etc/passwd/.", "/etc/passwd/..",
		"/etc/dangling", "/etc/dangling/", "/chain/0", "/chain/1", "/chain/40", "/chain/0/", "/bin/sh", "/bin/sh/",
		"/bin/", "/bin/.", "/bin/..", "/bin/../lib/os-release", "/dirs/d1/f", "/dirs/d1/../d1/f", "//etc//os-release",
		"/etc/./os-release", "/etc/loop/", "/etc/up", "/etc/up/", "/etc/nothing", "/nothing/x",
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		paths = append(paths, rel, "/"+rel+"/", rel+"/..", rel+"/../..", rel+"/x")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		compareWithKernel(t, h, rootFd, p)
	}
	// The hostile ones, spelled out: the kernel agreeing is not enough if
	// both were wrong.
	passwd, _ := kernelResolve(t, rootFd, "etc/passwd", true)
	for _, c := range []struct {
		path string
		ino  uint64
		err  error
	}{
		{"/etc/loop", 0, ErrLoop}, {"/etc/a", 0, ErrLoop}, {"/chain/0", 0, ErrLoop},
		{"/chain/1", passwd, nil}, {"/etc/abs", passwd, nil}, {"/etc/rel-up", passwd, nil},
		{"/etc/up/etc/passwd", passwd, nil}, {"/etc/trailing", 0, guestfs.ErrNotDir},
	} {
		ino, err := Resolve(h, c.path)
		if ino != c.ino || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("Resolve(%q) = %d, %v; want %d, %v", c.path, ino, err, c.ino, c.err)
		}
	}
	t.Logf("%d paths resolved both ways and compared with the kernel", len(paths))
}

func TestReadFileBounds(t *testing.T) {
	dir := t.TempDir()
	hostileTree(t, dir)
	big := strings.Repeat("ID=x\n", 2<<20) // 10 MiB
	if err := os.WriteFile(filepath.Join(dir, "etc/big"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	h, _ := openRoot(t, dir)
	if _, err := ReadFile(h, "/etc/big", 64<<10); !errors.Is(err, errTooLarge) {
		t.Errorf("10 MiB file with a 64 KiB limit: %v", err)
	}
	b, err := ReadFile(h, "/etc/os-release", 64<<10)
	want, _ := os.ReadFile(filepath.Join(dir, "usr/lib/os-release"))
	if err != nil || string(b) != string(want) {
		t.Errorf("ReadFile through a link: %q, %v; want %q", b, err, want)
	}
	if _, err := ReadFile(h, "/etc", 1<<20); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
	if b, err := readHead(h, "/etc/big", 20); err != nil || string(b) != big[:20] {
		t.Errorf("readHead: %q, %v", b, err)
	}
}

// FuzzResolve lays out three symlinks with fuzzed targets in a small tree
// and resolves a fuzzed path both ways: the result must be the kernel's
// (openat2 with RESOLVE_IN_ROOT), and nothing may leave the tree.
func FuzzResolve(f *testing.F) {
	f.Add("../..", "/a/l2/../b", "..", "/l1/l2/x")
	f.Add("a", "../l1", "../../l1", "a/b/l3/l2")
	f.Add("/", "f/", "/a/./b/../b", "/a/b/l3/f")
	f.Add("l1", "l2", "../../a/l2", "a/l2/")
	f.Fuzz(func(t *testing.T, t1, t2, t3, path string) {
		for _, s := range []string{t1, t2, t3} {
			if s == "" || len(s) >= maxLinkTarget || strings.ContainsRune(s, 0) {
				return
			}
		}
		if len(path) >= maxLinkTarget || strings.ContainsRune(path, 0) {
			return
		}
		for _, c := range strings.Split(path+"/"+t1+"/"+t2+"/"+t3, "/") {
			if len(c) > 255 {
				return // ENAMETOOLONG is the kernel's, not a resolution result
			}
		}
		dir := t.TempDir()
		for _, d := range []string{"a/b/c", "d"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("f"), 0o644); err != nil {
			t.Fatal(err)
		}
		for i, l := range []string{"l1", "a/l2", "a/b/l3"} {
			if err := os.Symlink([]string{t1, t2, t3}[i], filepath.Join(dir, l)); err != nil {
				return
			}
		}
		h, rootFd := openRoot(t, dir)
		compareWithKernel(t, h, rootFd, path)
	})
}
