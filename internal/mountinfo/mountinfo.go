// Package mountinfo reads the kernel's mount table, /proc/self/mountinfo,
// which the daemon and the integration tests consult instead of stat(2) on
// a FUSE mount point: a stat is a request to the mount itself.
package mountinfo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SetReadAhead sets the read-ahead of the mount at dir: that of its
// backing device (a per-mount "bdi" in sysfs named after its device
// number). It needs root. The number comes from the mount table, not
// stat(2): a daemon's stat of its own mount would be a request to itself,
// and a SIGKILL that lands while one of its threads waits on a request
// another has already read leaves the process unkillable (the kernel waits
// such a request out), holding the mount until its connection is aborted.
func SetReadAhead(dir string, kib int) error {
	major, minor, err := Device(dir)
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", major, minor)
	return os.WriteFile(path, []byte(strconv.Itoa(kib)), 0)
}

// ErrNotMounted means the mount table lists no mount at the folder.
var ErrNotMounted = errors.New("not in the mount table")

// Device returns the device number of the mount at dir, as the kernel
// lists it in /proc/self/mountinfo.
//
// The mount table is kernel memory, so reading it sends no request to the
// mount: a FUSE daemon can learn about its own mount without asking
// itself (see SetReadAhead), and a test can look at a mount whose
// daemon is stuck.
//
// Only the parent folder's symlinks are resolved, as the kernel resolved
// them when mounting: resolving dir itself would step into the mount.
func Device(dir string) (major, minor uint32, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("device of the mount at %s: %w", dir, err)
	}
	if parent, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(parent, filepath.Base(abs))
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return 0, 0, fmt.Errorf("device of the mount at %s: %w", abs, err)
	}
	defer f.Close()
	return parseMountDevice(f, abs)
}

// parseMountDevice finds the device number ("major:minor", the third
// field) of the mount whose mount point (the fifth field) is dir, in text
// in the format of /proc/PID/mountinfo. dir must be absolute and clean.
// The last matching line wins: a later mount on the same point shadows
// the earlier ones.
func parseMountDevice(r io.Reader, dir string) (major, minor uint32, err error) {
	br := bufio.NewReader(r) // no line limit: overlay options run long
	found := false
	for {
		line, rerr := br.ReadString('\n')
		if f := strings.Fields(line); len(f) >= 5 && unescapeMountinfo(f[4]) == dir {
			if major, minor, err = parseDevNumber(f[2]); err != nil {
				return 0, 0, fmt.Errorf("device of the mount at %s: %w", dir, err)
			}
			found = true
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return 0, 0, fmt.Errorf("reading the mount table: %w", rerr)
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("no mount at %s: %w", dir, ErrNotMounted)
	}
	return major, minor, nil
}

// parseDevNumber parses mountinfo's "major:minor".
func parseDevNumber(s string) (major, minor uint32, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("device number %q is not major:minor", s)
	}
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("device number %q: %w", s, err)
	}
	return uint32(ma), uint32(mi), nil
}

// unescapeMountinfo undoes the kernel's escaping of paths in mountinfo:
// space, tab, newline and backslash are written as a backslash and three
// octal digits (\040, \011, \012, \134). Anything else, including a
// backslash not followed by a byte's octal code, is kept as is.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
