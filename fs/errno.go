package fs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"github.com/rs/zerolog"
)

// Errno maps an error from a read to the errno the caller sees, and logs
// it: this is where read errors are handled, so this is the one place they
// are logged. Damaged or unavailable data is EIO: a reader must never get
// zeros or garbage in its place.
func Errno(log *zerolog.Logger, path string, off int64, err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.As(err, &errno):
		// An errno from the host (for example reading a vanished file) is
		// already what the caller should see.
	case errors.Is(err, fs.ErrNotExist):
		errno = syscall.ENOENT
	case errors.Is(err, fs.ErrPermission):
		errno = syscall.EACCES
	default:
		errno = syscall.EIO
	}
	log.Error().Err(err).Str("file", path).Int64("offset", off).Str("errno", errno.Error()).Msg("read failed")
	return errno
}
