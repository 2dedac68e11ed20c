package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/mountinfo"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// mounted reports whether dir is a mount point, from the kernel's table
// (a stat of a mount whose daemon is stuck would never return).
func mounted(t testing.TB, dir string) bool {
	t.Helper()
	_, _, err := mountinfo.Device(dir)
	if err != nil && !errors.Is(err, mountinfo.ErrNotMounted) {
		t.Fatal(err)
	}
	return err == nil
}

// mountResult is a background mount made by running ovfmount as a user
// would: the command returns once the mount is ready.
type mountResult struct {
	dir     string
	logFile string
}

// mountArchive runs `ovfmount ARCHIVE MNT` (daemonized) and unmounts at the
// end of the test, checking that the daemon then exits cleanly: its log
// must end with the "unmounted" line.
func mountArchive(t testing.TB, archive string, args ...string) *mountResult {
	t.Helper()
	testutil.RequireFUSE(t)
	m := &mountResult{dir: t.TempDir()}
	m.logFile = filepath.Join(t.TempDir(), "ovfmount.log")
	full := append([]string{"--log-file", m.logFile, "--log-level", "debug"}, args...)
	full = append(full, archive, m.dir)
	out, err := exec.Command(daemon(t), full...).CombinedOutput()
	if err != nil {
		t.Fatalf("ovfmount %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	if !mounted(t, m.dir) {
		t.Fatalf("ovfmount returned 0 but %s is not mounted", m.dir)
	}
	t.Cleanup(func() { m.unmount(t) })
	return m
}

func (m *mountResult) unmount(t testing.TB) {
	if !mounted(t, m.dir) {
		return
	}
	// The daemon logs its unmount, then closes the package (an overlay
	// writes its last state): the test's folders are removed only once
	// it has exited.
	pid := findDaemon(m.dir)
	var err error
	for range 50 { // a desktop or the previous test may still hold it briefly
		if err = exec.Command("fusermount3", "-u", m.dir).Run(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("fusermount3 -u %s: %v", m.dir, err)
		exec.Command("fusermount3", "-u", "-z", m.dir).Run()
		return
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(readFile(m.logFile), `"unmounted"`) }) {
		t.Errorf("the daemon did not log its exit after the unmount; log:\n%s", readFile(m.logFile))
	}
	if pid != 0 && !waitFor(10*time.Second, func() bool { return findDaemon(m.dir) != pid }) {
		t.Errorf("the daemon (pid %d) has not exited 10 s after the unmount", pid)
	}
}

func (m *mountResult) path(name string) string { return filepath.Join(m.dir, name) }

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// tarMembers lists the regular files of an archive as GNU tar sees them
// (tar -tv), with their sizes.
func tarMembers(t testing.TB, archive string) map[string]int64 {
	t.Helper()
	cmd := exec.Command("tar", "--numeric-owner", "--quoting-style=literal", "-tvf", archive)
	cmd.Env = append(os.Environ(), "LANG=C")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar -tvf %s: %v", archive, err)
	}
	files := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || (f[0][0] != '-' && f[0][0] != 'h') {
			continue
		}
		var size int64
		fmt.Sscan(f[2], &size)
		// Names are split on single spaces again, so names with spaces
		// survive; a hard link's line ends with " link to TARGET".
		rest := line[strings.Index(line, f[4])+len(f[4])+1:]
		if f[0][0] == 'h' {
			rest, _, _ = strings.Cut(rest, " link to ")
			size = -1 // tar shows 0 for links; the contents are the target's
		}
		files[strings.TrimPrefix(rest, "./")] = size
	}
	return files
}

// tarExtract runs tar -xO for one member: the oracle for its bytes.
func tarExtract(t testing.TB, archive, member string) []byte {
	t.Helper()
	out, err := exec.Command("tar", "-xOf", archive, member).Output()
	if err != nil {
		// GNU tar stores "./x" names; retry with the prefix.
		if out2, err2 := exec.Command("tar", "-xOf", archive, "./"+member).Output(); err2 == nil {
			return out2
		}
		t.Fatalf("tar -xOf %s %s: %v", archive, member, err)
	}
	return out
}

// runOvfmount runs the daemon(t) executable and returns its exit code and output.
func runOvfmount(t testing.TB, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(daemon(t), args...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// pread reads n bytes at off from path with one pread(2), so short reads
// are visible as such.
func pread(t testing.TB, f *os.File, n int, off int64) []byte {
	t.Helper()
	buf := make([]byte, n)
	k, err := retryEINTR(func() (int, error) { return syscall.Pread(int(f.Fd()), buf, off) })
	if err != nil {
		t.Fatalf("pread(%d, %d): %v", n, off, err)
	}
	return buf[:k]
}

// retryEINTR calls a raw read again while a signal interrupted it, as
// package os does. A signal that reaches a reader blocked in a FUSE read
// (the Go runtime preempts its threads with signals) makes the kernel ask
// the daemon to abandon the request; a request abandoned while it waits
// fails with EINTR, which the kernel does not restart.
func retryEINTR(read func() (int, error)) (int, error) {
	for {
		n, err := read()
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// firstDiff is the offset of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	i := 0
	for i < min(len(a), len(b)) && a[i] == b[i] {
		i++
	}
	return i
}
