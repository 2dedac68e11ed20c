package inspect

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

// MaxSymlinks is how many symbolic links one resolution follows before it
// gives up with ErrLoop: Linux's MAXSYMLINKS, so that a guest path
// resolves here exactly as it would in the guest.
const MaxSymlinks = 40

// maxLinkTarget is PATH_MAX: Linux refuses longer symlink bodies, so a
// longer one is a damaged volume, not a guest's path.
const maxLinkTarget = 4096

// ErrLoop is a resolution that followed more than MaxSymlinks links: a
// cycle, or a chain too long for the guest's own kernel (ELOOP).
var ErrLoop = errors.New("too many levels of symbolic links")

// Resolve finds path's inode in fsys as the guest's kernel would, with
// fsys as its root: symlinks are followed, the last one too; absolute
// ones start again at the root and relative ones in their directory; ".."
// goes to the parent of the directory actually reached, and stays at the
// root there, so nothing leads out of the guest. A path ending in "/"
// must be a directory. Errors wrap guestfs.ErrNotExist, guestfs.ErrNotDir,
// ErrLoop, or the filesystem's own.
func Resolve(fsys guestfs.FS, path string) (uint64, error) {
	return resolve(fsys, path, true)
}

// Lresolve is Resolve leaving the last component as it is when it is a
// symlink (lstat to Resolve's stat), unless the path ends in "/".
func Lresolve(fsys guestfs.FS, path string) (uint64, error) {
	return resolve(fsys, path, false)
}

// components splits a path into its names, keeping "." and "..", and
// ends it with "." where it ends in "/", so that the last real name must
// then be a directory (and a symlink there is followed), as in the kernel.
func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	if strings.HasSuffix(p, "/") && len(out) > 0 {
		out = append(out, ".")
	}
	return out
}

func resolve(fsys guestfs.FS, path string, followLast bool) (uint64, error) {
	if path == "" {
		return 0, fmt.Errorf("inspect: empty path: %w", guestfs.ErrNotExist)
	}
	// stack holds the directories from the root down to the current one,
	// so that ".." is the directory the walk came through (what Linux
	// does: links are resolved, then ".." is taken physically).
	stack := []uint64{fsys.Root()}
	pending := components(path)
	links := 0
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		switch name {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		e, err := fsys.Lookup(stack[len(stack)-1], name)
		if err != nil {
			return 0, fmt.Errorf("inspect: %s: %q: %w", path, name, err)
		}
		typ := e.Type & guestfs.TypeMask
		if typ == 0 {
			a, err := fsys.Stat(e.Ino)
			if err != nil {
				return 0, fmt.Errorf("inspect: %s: %q: %w", path, name, err)
			}
			typ = a.Mode & guestfs.TypeMask
		}
		last := len(pending) == 0
		if typ == guestfs.TypeSymlink && (!last || followLast) {
			links++
			if links > MaxSymlinks {
				return 0, fmt.Errorf("inspect: %s: more than %d links: %w", path, MaxSymlinks, ErrLoop)
			}
			target, err := fsys.Readlink(e.Ino)
			if err != nil {
				return 0, fmt.Errorf("inspect: %s: %q: %w", path, name, err)
			}
			if target == "" {
				return 0, fmt.Errorf("inspect: %s: %q is an empty symlink: %w", path, name, guestfs.ErrNotExist)
			}
			if len(target) >= maxLinkTarget {
				return 0, fmt.Errorf("inspect: %s: %q: a link of %d bytes: %w", path, name, len(target), guestfs.ErrCorrupt)
			}
			if target[0] == '/' {
				stack = stack[:1]
			}
			pending = append(components(target), pending...)
			continue
		}
		if last {
			return e.Ino, nil
		}
		if typ != guestfs.TypeDir {
			return 0, fmt.Errorf("inspect: %s: %q: %w", path, name, guestfs.ErrNotDir)
		}
		stack = append(stack, e.Ino)
	}
	return stack[len(stack)-1], nil
}

// errTooLarge is a file over the size its reader accepts.
var errTooLarge = errors.New("file too large")

// ReadFile returns the contents of the regular file at path (resolved
// with Resolve), refusing files larger than limit bytes: what the guest
// holds is read whole only when it is small enough to be what it claims.
func ReadFile(fsys guestfs.FS, path string, limit int64) ([]byte, error) {
	ino, err := Resolve(fsys, path)
	if err != nil {
		return nil, err
	}
	return readIno(fsys, path, ino, limit)
}

func readIno(fsys guestfs.FS, path string, ino uint64, limit int64) ([]byte, error) {
	a, err := fsys.Stat(ino)
	if err != nil {
		return nil, fmt.Errorf("inspect: %s: %w", path, err)
	}
	if a.Mode&guestfs.TypeMask != guestfs.TypeRegular {
		return nil, fmt.Errorf("inspect: %s: not a regular file (mode %o)", path, a.Mode)
	}
	f, err := fsys.Open(ino)
	if err != nil {
		return nil, fmt.Errorf("inspect: %s: %w", path, err)
	}
	n := f.Size()
	if n > limit || n < 0 {
		return nil, fmt.Errorf("inspect: %s: %d bytes, over the %d this reads: %w", path, n, limit, errTooLarge)
	}
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, 0)
	if m == len(buf) {
		return buf, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("inspect: %s: read %d of %d bytes: %w", path, m, n, err)
}

// readHead reads up to n bytes from the start of the regular file at path.
func readHead(fsys guestfs.FS, path string, n int) ([]byte, error) {
	ino, err := Resolve(fsys, path)
	if err != nil {
		return nil, err
	}
	b, err := readInoHead(fsys, ino, n)
	if err != nil {
		return nil, fmt.Errorf("inspect: %s: %w", path, err)
	}
	return b, nil
}

func readInoHead(fsys guestfs.FS, ino uint64, n int) ([]byte, error) {
	a, err := fsys.Stat(ino)
	if err != nil {
		return nil, err
	}
	if a.Mode&guestfs.TypeMask != guestfs.TypeRegular {
		return nil, fmt.Errorf("not a regular file (mode %o)", a.Mode)
	}
	f, err := fsys.Open(ino)
	if err != nil {
		return nil, err
	}
	if s := f.Size(); s < int64(n) {
		n = int(max(s, 0))
	}
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, 0)
	if m < n && err != nil && err != io.EOF {
		return nil, err
	}
	return buf[:m], nil
}
