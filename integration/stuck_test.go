package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ovfmount/ovfmount/internal/mountinfo"
)

// A FUSE daemon killed while one of its own threads waits on a request to
// its own mount that another of its threads has already read from
// /dev/fuse never exits: the kernel waits out such a request
// uninterruptibly, and no thread is left to answer it. The helpers here
// say where a process that will not exit is stuck, and free it, so that a
// test fails with a diagnosis instead of leaving a stuck process and a
// dead mount behind.

// threadReport describes where each thread of process pid is in the
// kernel: its state (R running, S sleeping, D uninterruptible, Z zombie)
// and its kernel stack. A daemon stuck on its own mount shows a D thread
// whose stack ends in request_wait_answer.
func threadReport(pid int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "/proc/%d/stack:\n%s", pid, readProc(fmt.Sprintf("/proc/%d/stack", pid)))
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		fmt.Fprintf(&b, "no threads listed in /proc/%d/task (%v)\n", pid, err)
	}
	for _, task := range tasks {
		fmt.Fprintf(&b, "thread %s, state %s, stack:\n%s", filepath.Base(task), taskState(task), readProc(task+"/stack"))
	}
	return b.String()
}

// taskState is the state field of a thread's stat file: the first field
// after the command name, which is in parentheses and may itself hold
// spaces and parentheses.
func taskState(task string) string {
	s := readProc(task + "/stat")
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "unknown (" + strings.TrimSpace(s) + ")"
	}
	f := strings.Fields(s[i+1:])
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

// readProc reads a /proc file for a report, saying why when it cannot.
func readProc(path string) string {
	b, err := os.ReadFile(path)
	switch {
	case err != nil:
		return fmt.Sprintf("  (%v)\n", err)
	case len(b) == 0:
		return "  (empty)\n"
	}
	return string(b)
}

// abortFUSE aborts the FUSE connection of the mount at dir: every request
// in flight fails, so a daemon stuck on its own mount can finish exiting,
// and the mount is left dead (ENOTCONN) for the caller to unmount. The
// connection is found in fusectl by the mount's device minor number, read
// from the mount table: stat on the mount would itself wait forever.
// Where fusectl is not mounted, a forced unmount (root only) aborts the
// connection too, before the kernel checks whether the mount is busy, so
// even its EBUSY means aborted. It returns what it did, for the report.
func abortFUSE(dir string) string {
	_, minor, err := mountinfo.Device(dir)
	if err != nil {
		return fmt.Sprintf("nothing to abort: %v", err)
	}
	ctl := filepath.Join("/sys/fs/fuse/connections", fmt.Sprint(minor), "abort")
	err = os.WriteFile(ctl, []byte("1"), 0)
	if err == nil {
		return "aborted through " + ctl
	}
	ferr := syscall.Unmount(dir, syscall.MNT_FORCE)
	return fmt.Sprintf("%s: %v; forced unmount (aborts too, even when busy): %v", ctl, err, ferr)
}
