// Package guestfstest walks a guestfs.FS and compares it with a tree the
// host sees (a kernel mount, ntfs-3g, or a folder an extraction tool
// wrote): the check each filesystem's tests share.
package guestfstest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Node is one file as a walk saw it.
type Node struct {
	Path   string // slash-separated, relative to the root; "" is the root
	Attr   guestfs.Attr
	SHA256 string // of a regular file's bytes
	Target string // a symlink's target
	Xattrs map[string]string
}

// Walk reads every file of fsys, depth first, and returns them by path.
// It fails the test on any error, on a directory reached twice (a cycle),
// and after limit entries.
func Walk(t testing.TB, fsys guestfs.FS, limit int) map[string]*Node {
	t.Helper()
	out := map[string]*Node{}
	seenDir := map[uint64]bool{}
	var walk func(path string, ino uint64)
	walk = func(path string, ino uint64) {
		a, err := fsys.Stat(ino)
		if err != nil {
			t.Fatalf("stat %q (inode %d): %v", path, ino, err)
		}
		n := &Node{Path: path, Attr: a}
		out[path] = n
		if len(out) > limit {
			t.Fatalf("more than %d entries", limit)
		}
		if xs, err := fsys.Xattrs(ino); err != nil {
			t.Fatalf("xattrs %q: %v", path, err)
		} else if len(xs) > 0 {
			n.Xattrs = map[string]string{}
			for _, x := range xs {
				n.Xattrs[x.Name] = string(x.Value)
			}
		}
		switch a.Mode & guestfs.TypeMask {
		case guestfs.TypeRegular:
			f, err := fsys.Open(ino)
			if err != nil {
				t.Fatalf("open %q: %v", path, err)
			}
			if f.Size() != a.Size {
				t.Fatalf("%q: opened size %d, stat size %d", path, f.Size(), a.Size)
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
				t.Fatalf("read %q: %v", path, err)
			}
			n.SHA256 = hex.EncodeToString(h.Sum(nil))
		case guestfs.TypeSymlink:
			tg, err := fsys.Readlink(ino)
			if err != nil {
				t.Fatalf("readlink %q: %v", path, err)
			}
			n.Target = tg
		case guestfs.TypeDir:
			if seenDir[ino] {
				t.Fatalf("%q: directory inode %d reached twice", path, ino)
			}
			seenDir[ino] = true
			var ents []guestfs.DirEntry
			if err := fsys.ReadDir(ino, func(e guestfs.DirEntry) error {
				ents = append(ents, e)
				if len(ents) > limit {
					return fmt.Errorf("more than %d entries in %q", limit, path)
				}
				return nil
			}); err != nil {
				t.Fatalf("readdir %q: %v", path, err)
			}
			for _, e := range ents {
				if e.Name == "." || e.Name == ".." || e.Name == "" || strings.Contains(e.Name, "/") {
					t.Fatalf("%q: bad entry name %q", path, e.Name)
				}
				got, err := fsys.Lookup(ino, e.Name)
				if err != nil || got.Ino != e.Ino {
					t.Fatalf("%q: lookup %q = %+v, %v; readdir said inode %d", path, e.Name, got, err, e.Ino)
				}
				walk(strings.TrimPrefix(path+"/"+e.Name, "/"), e.Ino)
			}
		}
	}
	walk("", fsys.Root())
	if _, err := fsys.Lookup(fsys.Root(), "no such name \x01"); !errors.Is(err, guestfs.ErrNotExist) {
		t.Fatalf("lookup of a missing name: %v, want ErrNotExist", err)
	}
	return out
}

// Compare says which fields to compare with the host's tree.
type Compare struct {
	Owner   bool          // uid and gid
	Perm    bool          // the permission bits (0o7777)
	Nlink   bool          // link counts
	Ino     bool          // inode numbers (a kernel mount of the same volume)
	Xattrs  bool          // extended attributes (those the host lists)
	Times   time.Duration // compare mtime (and atime, ctime unless NoCtime) to this granularity; 0: not at all
	NoAtime bool
	NoCtime bool
	// Skip leaves out paths (and what is under them) the host shows but
	// the filesystem does not, such as lost+found's contents being
	// unreadable, or the reverse.
	Skip func(path string) bool
}

// Tree reads a host folder as Walk reads an FS: the oracle side.
func Tree(t testing.TB, root string) map[string]*Node {
	t.Helper()
	out := map[string]*Node{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			rel = ""
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := &Node{Path: filepath.ToSlash(rel), Attr: guestfs.Attr{
			Ino: st.Ino, Mode: st.Mode, Nlink: uint32(st.Nlink), Uid: st.Uid, Gid: st.Gid, Size: st.Size,
			Rdev: st.Rdev, Atime: time.Unix(st.Atim.Unix()), Mtime: time.Unix(st.Mtim.Unix()), Ctime: time.Unix(st.Ctim.Unix()),
		}}
		switch st.Mode & guestfs.TypeMask {
		case guestfs.TypeRegular:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			n.SHA256 = hex.EncodeToString(h.Sum(nil))
		case guestfs.TypeSymlink:
			n.Target, err = os.Readlink(p)
			if err != nil {
				return err
			}
		}
		n.Xattrs = hostXattrs(p)
		out[n.Path] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hostXattrs(p string) map[string]string {
	buf := make([]byte, 64<<10)
	sz, err := unix.Llistxattr(p, buf)
	if err != nil || sz == 0 {
		return nil
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		v := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(p, name, v)
		if err == nil {
			out[name] = string(v[:n])
		}
	}
	return out
}

// Equal compares what Walk saw (got) with what Tree saw (want), field by
// field as c says, and reports every difference (up to 50).
func Equal(t testing.TB, got, want map[string]*Node, c Compare) {
	t.Helper()
	var diffs []string
	add := func(format string, args ...any) {
		if len(diffs) < 50 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	skip := func(p string) bool { return c.Skip != nil && c.Skip(p) }
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if skip(p) {
			continue
		}
		w, g := want[p], got[p]
		if g == nil {
			add("%q: missing", p)
			continue
		}
		if g.Attr.Mode&guestfs.TypeMask != w.Attr.Mode&guestfs.TypeMask {
			add("%q: type %o, want %o", p, g.Attr.Mode&guestfs.TypeMask, w.Attr.Mode&guestfs.TypeMask)
			continue
		}
		if c.Perm && g.Attr.Mode&0o7777 != w.Attr.Mode&0o7777 {
			add("%q: mode %o, want %o", p, g.Attr.Mode&0o7777, w.Attr.Mode&0o7777)
		}
		isDir := w.Attr.Mode&guestfs.TypeMask == guestfs.TypeDir
		if !isDir && g.Attr.Size != w.Attr.Size {
			add("%q: size %d, want %d", p, g.Attr.Size, w.Attr.Size)
		}
		if g.SHA256 != w.SHA256 {
			add("%q: content differs", p)
		}
		if g.Target != w.Target {
			add("%q: target %q, want %q", p, g.Target, w.Target)
		}
		if c.Owner && (g.Attr.Uid != w.Attr.Uid || g.Attr.Gid != w.Attr.Gid) {
			add("%q: owner %d:%d, want %d:%d", p, g.Attr.Uid, g.Attr.Gid, w.Attr.Uid, w.Attr.Gid)
		}
		if c.Nlink && g.Attr.Nlink != w.Attr.Nlink {
			add("%q: nlink %d, want %d", p, g.Attr.Nlink, w.Attr.Nlink)
		}
		if c.Ino && g.Attr.Ino != w.Attr.Ino {
			add("%q: inode %d, want %d", p, g.Attr.Ino, w.Attr.Ino)
		}
		if t := w.Attr.Mode & guestfs.TypeMask; (t == guestfs.TypeChar || t == guestfs.TypeBlock) && g.Attr.Rdev != w.Attr.Rdev {
			add("%q: rdev %#x, want %#x", p, g.Attr.Rdev, w.Attr.Rdev)
		}
		if c.Times > 0 {
			check := func(what string, gt, wt time.Time) {
				if !gt.Truncate(c.Times).Equal(wt.Truncate(c.Times)) {
					add("%q: %s %v, want %v", p, what, gt.UTC(), wt.UTC())
				}
			}
			check("mtime", g.Attr.Mtime, w.Attr.Mtime)
			if !c.NoAtime {
				check("atime", g.Attr.Atime, w.Attr.Atime)
			}
			if !c.NoCtime {
				check("ctime", g.Attr.Ctime, w.Attr.Ctime)
			}
		}
		if c.Xattrs {
			for k, v := range w.Xattrs {
				if g.Xattrs[k] != v {
					add("%q: xattr %s = %q, want %q", p, k, g.Xattrs[k], v)
				}
			}
		}
	}
	for p := range got {
		if want[p] == nil && !skip(p) {
			add("%q: not in the host's tree", p)
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%d paths compared, differences:\n  %s", len(want), strings.Join(diffs, "\n  "))
	}
}
