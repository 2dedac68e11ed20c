package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Errno maps an error from a read to the errno the caller sees, and logs
// it: this is where read errors are handled, so this is the one place they
// are logged. Damaged, changed or unreachable data is EIO, whatever the
// underlying errno (a vanished backing mount says ENOTCONN, for one): a
// reader must never get zeros or garbage in its place, and the log keeps
// the real cause. Only an interrupted read is EINTR.
func Errno(log *zerolog.Logger, path string, off int64, err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, guestfs.ErrUnsupported):
		errno = syscall.EOPNOTSUPP
	default:
		errno = syscall.EIO
	}
	log.Error().Err(err).Str("file", path).Int64("offset", off).Str("errno", errno.Error()).Msg("read failed")
	return errno
}

// guestErrno maps an error from a guest filesystem. Its answers (no such
// name, not a directory) are answers, not failures, and are not logged;
// only the guest filesystem's own calls can give them, so a read error
// that happens to wrap fs.ErrNotExist is still EIO. A feature the reader
// lacks (an encrypted file) is EOPNOTSUPP, logged.
func guestErrno(log *zerolog.Logger, path string, off int64, err error) syscall.Errno {
	switch {
	case errors.Is(err, guestfs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, guestfs.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, guestfs.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, guestfs.ErrNotLink):
		return syscall.EINVAL
	}
	return Errno(log, path, off, err)
}
