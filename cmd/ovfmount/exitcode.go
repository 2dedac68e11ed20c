package main

import (
	"errors"
	"fmt"
)

// Exit codes are stable: scripts and mount(8) rely on them. They are listed
// in --help and in the README.
const (
	exitOK         = 0  // success
	exitVerify     = 1  // verification found a problem (verify, check, audit verify)
	exitUsage      = 2  // bad flags or arguments, an archive that is missing, unreadable or not an OVA/OVF, or an --audit-log that cannot be written
	exitMountpoint = 10 // the mountpoint is missing, not a directory, not empty, stale, or already mounted
	exitFUSE       = 11 // the kernel refused the mount (no /dev/fuse, no fusermount3, not permitted)
	exitDaemon     = 12 // the background process died before reporting the mount ready
	exitListen     = 13 // serve: the NBD address cannot be listened on, or serving it failed
	exitInternal   = 70 // a bug: please report it
)

const exitCodeHelp = `Exit codes:
   0  success
   1  verification failed (verify: a digest mismatch, a missing file or a bad signature;
      with --disks, a disk that got no digest; check: an importer would refuse the
      package; audit verify: the chain is broken)
   2  usage error, or the archive is missing, unreadable, or not an OVA or OVF
      package, or the --audit-log cannot be opened, continued or written
  10  the mountpoint is missing, not a directory, not empty, stale, or already mounted
  11  the FUSE mount failed (no /dev/fuse, no fusermount3, or not permitted)
  12  the background process exited before the mount was ready
  13  serve: the NBD address cannot be listened on (in use, not permitted, or
      reachable from other hosts without TLS or --insecure)
  70  internal error
`

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// codeOf returns the exit code for err (exitInternal if unclassified).
func codeOf(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if err == nil {
		return exitOK
	}
	return exitInternal
}
