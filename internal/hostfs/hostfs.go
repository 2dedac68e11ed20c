// Package hostfs reads a folder of the host through the guestfs.FS
// interface, so that code written against guest filesystems (path
// resolution, OS inspection, the FUSE layer) can be tested on trees a test
// assembles with the host's own tools and files, before or beside a real
// filesystem reader. It is a real implementation, not a fake: every answer
// comes from the host kernel (fstatat, getdents, readlinkat, pread).
//
// It stays inside its folder: every access is an openat2 beneath the
// root's descriptor with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so a symlink
// in the tree is only ever read as text, never followed, and no name
// reaches outside. Inode numbers are the host's; the folder must lie on one
// host filesystem (names on another are left out of ReadDir and Lookup
// returns guestfs.ErrUnsupported for them), so that they are unique.
//
// What it leaves out: birth times and file flags (Btime and Flags are
// zero), and the extended attributes of anything but regular files and
// directories (Xattrs returns none for them).
package hostfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
)

// FS is a host folder read as a guest filesystem. It is safe for
// concurrent use.
type FS struct {
	root    string
	rootFd  int
	rootIno uint64
	dev     uint64

	mu    sync.Mutex
	paths map[uint64]string // inode -> a path relative to the root ("" for the root)
}

var _ guestfs.FS = (*FS)(nil)

// Open opens the folder dir. Close releases its descriptor.
func Open(dir string) (*FS, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hostfs: open %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostfs: stat %s: %w", dir, err)
	}
	return &FS{root: dir, rootFd: fd, rootIno: st.Ino, dev: st.Dev, paths: map[uint64]string{st.Ino: ""}}, nil
}

// Close releases the root's descriptor. Files opened before stay readable.
func (f *FS) Close() error { return unix.Close(f.rootFd) }

func (f *FS) Info() guestfs.Info {
	return guestfs.Info{Type: "hostdir", Label: f.root, BlockSize: 4096}
}

func (f *FS) Root() uint64 { return f.rootIno }

// openBeneath opens rel (relative to the root, "" for the root itself)
// without following any symlink and without leaving the root.
func (f *FS) openBeneath(rel string, flags uint64) (int, error) {
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(f.rootFd, rel, &unix.OpenHow{
			Flags:   flags | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// pathOf is the path a previous Lookup or ReadDir found for ino.
func (f *FS) pathOf(ino uint64) (string, error) {
	f.mu.Lock()
	p, ok := f.paths[ino]
	f.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("hostfs: inode %d not reached by a lookup: %w", ino, guestfs.ErrNotExist)
	}
	return p, nil
}

func (f *FS) remember(ino uint64, rel string) {
	f.mu.Lock()
	if _, ok := f.paths[ino]; !ok {
		f.paths[ino] = rel
	}
	f.mu.Unlock()
}

// lstat stats rel without following it, through its parent's descriptor.
func (f *FS) lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if rel == "" {
		return st, unix.Fstat(f.rootFd, &st)
	}
	dir, base := path.Split(rel)
	pfd, err := f.openBeneath(strings.TrimSuffix(dir, "/"), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return st, err
	}
	defer unix.Close(pfd)
	return st, unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
}

// statIno stats ino's path and checks that it is still that inode.
func (f *FS) statIno(ino uint64) (string, unix.Stat_t, error) {
	rel, err := f.pathOf(ino)
	if err != nil {
		return "", unix.Stat_t{}, err
	}
	st, err := f.lstat(rel)
	if err != nil {
		return "", st, hostErr("stat", rel, err)
	}
	if st.Ino != ino {
		return "", st, fmt.Errorf("hostfs: %q is no longer inode %d: %w", rel, ino, guestfs.ErrNotExist)
	}
	return rel, st, nil
}

// hostErr turns a host errno into the interface's sentinel errors.
func hostErr(op, rel string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("hostfs: %s %q: %w", op, rel, guestfs.ErrNotExist)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("hostfs: %s %q: %w", op, rel, guestfs.ErrNotDir)
	case errors.Is(err, unix.EISDIR):
		return fmt.Errorf("hostfs: %s %q: %w", op, rel, guestfs.ErrIsDir)
	}
	return fmt.Errorf("hostfs: %s %q: %w", op, rel, err)
}

func (f *FS) Stat(ino uint64) (guestfs.Attr, error) {
	_, st, err := f.statIno(ino)
	if err != nil {
		return guestfs.Attr{}, err
	}
	return attrOf(&st), nil
}

func attrOf(st *unix.Stat_t) guestfs.Attr {
	return guestfs.Attr{
		Ino: st.Ino, Mode: st.Mode, Nlink: uint32(st.Nlink), Uid: st.Uid, Gid: st.Gid,
		Size: st.Size, Blocks: st.Blocks * 512, Rdev: st.Rdev,
		Atime: time.Unix(st.Atim.Unix()), Mtime: time.Unix(st.Mtim.Unix()), Ctime: time.Unix(st.Ctim.Unix()),
	}
}

// ReadDir streams the directory in the host's getdents order, a batch of
// entries at a time.
func (f *FS) ReadDir(dir uint64, fn func(guestfs.DirEntry) error) error {
	rel, st, err := f.statIno(dir)
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("hostfs: readdir %q: %w", rel, guestfs.ErrNotDir)
	}
	fd, err := f.openBeneath(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return hostErr("readdir", rel, err)
	}
	d := os.NewFile(uintptr(fd), rel)
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, name := range names {
			e, lerr := f.lookupAt(fd, rel, name)
			if errors.Is(lerr, guestfs.ErrNotExist) || errors.Is(lerr, guestfs.ErrUnsupported) {
				continue // removed since, or on another host filesystem
			}
			if lerr != nil {
				return lerr
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return hostErr("readdir", rel, err)
		}
	}
}

// lookupAt stats name in the directory open as dirFd (whose path is rel).
func (f *FS) lookupAt(dirFd int, rel, name string) (guestfs.DirEntry, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirFd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return guestfs.DirEntry{}, hostErr("lookup", path.Join(rel, name), err)
	}
	child := path.Join(rel, name)
	if st.Dev != f.dev {
		return guestfs.DirEntry{}, fmt.Errorf("hostfs: %q is on another host filesystem: %w", child, guestfs.ErrUnsupported)
	}
	f.remember(st.Ino, child)
	return guestfs.DirEntry{Name: name, Ino: st.Ino, Type: st.Mode & unix.S_IFMT}, nil
}

func (f *FS) Lookup(dir uint64, name string) (guestfs.DirEntry, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") || strings.Contains(name, "\x00") {
		return guestfs.DirEntry{}, fmt.Errorf("hostfs: lookup %q: %w", name, guestfs.ErrNotExist)
	}
	rel, st, err := f.statIno(dir)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return guestfs.DirEntry{}, fmt.Errorf("hostfs: lookup in %q: %w", rel, guestfs.ErrNotDir)
	}
	fd, err := f.openBeneath(rel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return guestfs.DirEntry{}, hostErr("lookup", rel, err)
	}
	defer unix.Close(fd)
	return f.lookupAt(fd, rel, name)
}

// Open opens a regular file; the file stays readable until it is garbage
// collected (guestfs.File has no Close).
func (f *FS) Open(ino uint64) (guestfs.File, error) {
	rel, st, err := f.statIno(ino)
	if err != nil {
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		return nil, fmt.Errorf("hostfs: open %q: %w", rel, guestfs.ErrIsDir)
	default:
		return nil, fmt.Errorf("hostfs: open %q: not a regular file: %w", rel, guestfs.ErrUnsupported)
	}
	fd, err := f.openBeneath(rel, unix.O_RDONLY|unix.O_NOFOLLOW)
	if err != nil {
		return nil, hostErr("open", rel, err)
	}
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil || fst.Ino != ino {
		unix.Close(fd)
		return nil, fmt.Errorf("hostfs: %q changed while opening it: %w", rel, guestfs.ErrNotExist)
	}
	return &file{f: os.NewFile(uintptr(fd), rel), size: fst.Size}, nil
}

type file struct {
	f    *os.File
	size int64
}

func (h *file) ReadAt(p []byte, off int64) (int, error) {
	if off >= h.size {
		return 0, io.EOF
	}
	return h.f.ReadAt(p, off)
}

func (h *file) Size() int64 { return h.size }

func (f *FS) Readlink(ino uint64) (string, error) {
	rel, st, err := f.statIno(ino)
	if err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", fmt.Errorf("hostfs: readlink %q: %w", rel, guestfs.ErrNotLink)
	}
	dir, base := path.Split(rel)
	pfd, err := f.openBeneath(strings.TrimSuffix(dir, "/"), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", hostErr("readlink", rel, err)
	}
	defer unix.Close(pfd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(pfd, base, buf)
	if err != nil {
		return "", hostErr("readlink", rel, err)
	}
	return string(buf[:n]), nil
}

// Xattrs lists the extended attributes of regular files and directories.
func (f *FS) Xattrs(ino uint64) ([]guestfs.Xattr, error) {
	rel, st, err := f.statIno(ino)
	if err != nil {
		return nil, err
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		return nil, nil
	}
	fd, err := f.openBeneath(rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return nil, hostErr("xattrs", rel, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	n, err := unix.Flistxattr(fd, buf)
	if err != nil {
		return nil, hostErr("xattrs", rel, err)
	}
	var out []guestfs.Xattr
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Fgetxattr(fd, name, v)
		if errors.Is(err, unix.ERANGE) || errors.Is(err, unix.ENODATA) {
			continue // over the 64 KiB limit, or removed since
		}
		if err != nil {
			return nil, hostErr("xattr "+name, rel, err)
		}
		out = append(out, guestfs.Xattr{Name: name, Value: v[:m]})
	}
	return out, nil
}
