package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// checkMountpoint refuses a mountpoint the user would regret: missing, not
// a folder, not empty (mounting would hide its files), or a dead FUSE mount
// whose daemon was killed. It returns the absolute path.
func checkMountpoint(path string, nonempty bool) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fail(exitMountpoint, "mountpoint %s: %v", path, err)
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return "", fail(exitMountpoint, "mountpoint %s is a stale FUSE mount whose process has died; clean it up with: fusermount3 -u %s", path, abs)
	case errors.Is(err, os.ErrNotExist):
		return "", fail(exitMountpoint, "mountpoint %s does not exist (create it with mkdir)", path)
	case err != nil:
		return "", fail(exitMountpoint, "mountpoint %s: %s", path, describeOSError(err))
	case !st.IsDir():
		return "", fail(exitMountpoint, "mountpoint %s is not a directory", path)
	}
	if parent, err := os.Stat(filepath.Dir(abs)); err == nil && abs != "/" &&
		parent.Sys().(*syscall.Stat_t).Dev != st.Sys().(*syscall.Stat_t).Dev {
		// A mount point. The kernel may answer stat from its attribute
		// cache even when the FUSE daemon behind it is dead; statfs always
		// asks the daemon, so it tells a stale mount from a live one.
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(abs, &sfs); errors.Is(err, syscall.ENOTCONN) {
			return "", fail(exitMountpoint, "mountpoint %s is a stale FUSE mount whose process has died; clean it up with: fusermount3 -u %s", path, abs)
		}
		if !nonempty {
			return "", fail(exitMountpoint, "mountpoint %s is already a mount point (unmount it first; -o nonempty mounts on top)", path)
		}
	}
	if nonempty {
		return abs, nil
	}
	d, err := os.Open(abs)
	if err != nil {
		return "", fail(exitMountpoint, "mountpoint %s: %s", path, describeOSError(err))
	}
	defer d.Close()
	if _, err := d.Readdirnames(1); err != io.EOF {
		if err == nil {
			return "", fail(exitMountpoint, "mountpoint %s is not empty (mounting would hide its files; -o nonempty allows it)", path)
		}
		return "", fail(exitMountpoint, "mountpoint %s: %v", path, err)
	}
	return abs, nil
}
