package hostfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
)

// copyTree copies up to limit regular files from the host's src (real
// content: man pages, locale data) into dst, keeping the relative paths.
func copyTree(t *testing.T, src, dst string, limit int) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || n >= limit {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		n++
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWalkMatchesHost reads a tree of real files, symlinks, hard links, a
// FIFO, a device node and extended attributes through the interface and
// compares it with what the kernel says of the same folder.
func TestWalkMatchesHost(t *testing.T) {
	dir := t.TempDir()
	n := copyTree(t, "/usr/share/doc", filepath.Join(dir, "doc"), 400)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("doc", filepath.Join(dir, "rel-link")))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "abs-link")))
	must(os.Symlink("../../../..", filepath.Join(dir, "escape")))
	must(os.WriteFile(filepath.Join(dir, "näme with spaces"), []byte("x"), 0o640))
	must(os.Link(filepath.Join(dir, "näme with spaces"), filepath.Join(dir, "hard")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Mkdir(filepath.Join(dir, "empty"), 0o1777))
	xattrs := unix.Setxattr(filepath.Join(dir, "hard"), "user.comment", []byte("a value"), 0) == nil

	h, err := Open(dir)
	must(err)
	defer h.Close()
	got := guestfstest.Walk(t, h, 10000)
	want := guestfstest.Tree(t, dir)
	guestfstest.Equal(t, got, want, guestfstest.Compare{Owner: true, Perm: true, Nlink: true, Ino: true, Xattrs: true, Times: 1, NoAtime: true})
	if len(want) < n+9 {
		t.Fatalf("the host's tree has %d paths, want at least %d", len(want), n+9)
	}
	if xattrs && got["hard"].Xattrs["user.comment"] != "a value" {
		t.Errorf("xattr of hard: %q", got["hard"].Xattrs)
	}
	t.Logf("%d paths compared with the host (%d files copied from /usr/share/doc; xattrs: %v)", len(want), n, xattrs)
}

// TestStaysInside checks that names never lead out of the folder: ".."
// and names with a slash are not found, and a symlink is never a
// directory to look in.
func TestStaysInside(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("../../../../etc", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	h, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range []string{"..", ".", "escape/passwd", "../etc", ""} {
		if _, err := h.Lookup(h.Root(), name); !errors.Is(err, guestfs.ErrNotExist) {
			t.Errorf("lookup %q: %v, want ErrNotExist", name, err)
		}
	}
	e, err := h.Lookup(h.Root(), "escape")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Lookup(e.Ino, "passwd"); !errors.Is(err, guestfs.ErrNotDir) {
		t.Errorf("lookup through a symlink: %v, want ErrNotDir", err)
	}
	if _, err := h.Open(e.Ino); err == nil {
		t.Error("open of a symlink succeeded")
	}
	if tg, err := h.Readlink(e.Ino); err != nil || !strings.HasPrefix(tg, "../") {
		t.Errorf("readlink: %q, %v", tg, err)
	}
	if _, err := h.Stat(12345678901); !errors.Is(err, guestfs.ErrNotExist) {
		t.Errorf("stat of an inode never looked up: %v", err)
	}
}
