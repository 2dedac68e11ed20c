package fs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A mount by a user other than root goes through the set-uid helper
// fusermount3 (go-fuse runs it; as root we call mount(2) ourselves, and fall
// back to it). When fusermount3 refuses, it prints why on its stderr, which
// it inherits from us, and exits 1; go-fuse then reports only "fusermount
// exited with code 256\n" (a wait status, not the exit code). The reason
// belongs in our error, where the user and the waiting parent of a
// background mount see it, not loose on a terminal that may be gone.

// captureFusermount runs mount with stderr (file descriptor 2) pointing at
// a file in memory, and returns what fusermount wrote there, one line per
// message. The other lines, which our own log may write to stderr
// meanwhile, are passed on to the real stderr once mount returns, in their
// order. A file rather than a pipe, because a pipe needs a reader running
// beside the mount, and that reader, woken through the runtime's poller or
// blocking one of the two cores' Ps, made mounts 2 to 5 ms slower in the
// median here. If the file cannot be set up, mount runs with stderr as it
// is.
func captureFusermount(mount func()) []string {
	saved, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		mount()
		return nil
	}
	real := os.NewFile(uintptr(saved), "stderr")
	defer real.Close()
	fd, err := unix.MemfdCreate("ovfmount-stderr", unix.MFD_CLOEXEC)
	if err != nil {
		mount()
		return nil
	}
	captured := os.NewFile(uintptr(fd), "captured stderr")
	defer captured.Close()
	if err := unix.Dup3(fd, 2, 0); err != nil {
		mount()
		return nil
	}
	mount()
	unix.Dup3(saved, 2, 0)
	return splitFusermount(io.NewSectionReader(captured, 0, 1<<62), real)
}

// splitFusermount reads lines from r until its end, returning those that
// fusermount wrote ("/usr/bin/fusermount3: failed to open /dev/fuse: ...")
// with the program named by its base name, and copying the others to w.
func splitFusermount(r io.Reader, w io.Writer) []string {
	var said []string
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if msg, ok := fusermountLine(line); ok {
				said = append(said, msg)
			} else {
				w.Write([]byte(line))
			}
		}
		if err != nil {
			return said
		}
	}
}

// fusermountLine reports whether line is a message of fusermount or
// fusermount3, which start with the program as it was run, and returns it
// without the path and the newline.
func fusermountLine(line string) (string, bool) {
	prog, msg, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ": ")
	if !ok || strings.ContainsAny(prog, " \t") {
		return "", false
	}
	switch base := filepath.Base(prog); base {
	case "fusermount3", "fusermount":
		return base + ": " + msg, true
	}
	return "", false
}

// mountError explains a failed mount with what fusermount said, if it
// said anything, and otherwise with what go-fuse said, tidied.
func mountError(err error, said []string) error {
	if len(said) > 0 {
		return &MountError{Reason: strings.Join(said, "; "), Err: err}
	}
	if errors.Is(err, exec.ErrNotFound) {
		return &MountError{Reason: "fusermount3 is not installed (the fuse3 package has it), and mounting without it needs root", Err: err}
	}
	msg := strings.TrimSpace(err.Error())
	var status int
	if _, serr := fmt.Sscanf(msg, "fusermount exited with code %d", &status); serr == nil {
		ws := syscall.WaitStatus(status)
		how := fmt.Sprintf("with exit status %d", ws.ExitStatus())
		if ws.Signaled() {
			how = fmt.Sprintf("on signal %v", ws.Signal())
		}
		return &MountError{Reason: "fusermount3 failed " + how + " and gave no reason", Err: err}
	}
	if msg != err.Error() {
		return &MountError{Reason: msg, Err: err}
	}
	return err
}

// MountError is a mount the kernel or fusermount3 refused, with the
// reason in words; Err is go-fuse's own error.
type MountError struct {
	Reason string
	Err    error
}

func (e *MountError) Error() string { return e.Reason }
func (e *MountError) Unwrap() error { return e.Err }
