package fs

import (
	"fmt"
	"log"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/internal/mountinfo"
)

// MountOptions are the kernel-facing choices for a mount.
type MountOptions struct {
	FsName             string   // first column of df and /proc/mounts: the archive path
	AllowOther         bool     // let users other than the mounter in (needs user_allow_other for non-root)
	DefaultPermissions bool     // let the kernel check modes against the caller
	KernelOptions      []string // further -o options the kernel understands
	Debug              bool     // log every FUSE request (very verbose)
	Log                zerolog.Logger
}

// Server is a running mount.
type Server struct{ srv *fuse.Server }

// Unmount detaches the mount; it fails with EBUSY while it is in use.
func (s *Server) Unmount() error { return s.srv.Unmount() }

// Wait returns when the mount is gone, whoever unmounted it.
func (s *Server) Wait() { s.srv.Wait() }

const (
	pageSize = 4096
	// maxRead is the largest read the kernel sends. Bigger requests mean
	// fewer round trips for sequential readers such as dd, cp and qemu, up
	// to the kernel's 1 MiB. Three pages less, because a reply is spliced
	// through a pipe that holds at most fs.pipe-max-size (1 MiB, 256 page
	// slots by default): the header takes a slot, go-fuse keeps one spare,
	// and data that does not start on a page boundary spans one more page
	// than its length. A reply that does not fit is cut short by the pipe,
	// and the kernel would take the short reply for the end of the file.
	maxRead = 1<<20 - 3*pageSize
	// maxBackground bounds the kernel's asynchronous requests (read-ahead
	// and direct I/O). go-fuse sends 0 when options are given, which would
	// leave the kernel default of 12; more lets read-ahead keep every core
	// busy on decoded disk views.
	maxBackground = 64
	// readAheadKiB is the read-ahead window set on the mount's backing
	// device. The kernel gives FUSE 128 KiB, so sequential readers get
	// 128 KiB requests however large max_read is, one window at a time.
	// Measured on 2 cores: a stored member read at 1.4 GB/s with 128 KiB
	// and 2.3 GB/s with 4 MiB; a compressed VMDK view at 362 and 435 MB/s,
	// because a larger window keeps more requests decoding in parallel.
	// 16 MiB was no faster than 4 (alternating runs: a stored member at a
	// median of 1.49 against 1.57 GB/s, the VMDK view at 645 against 654
	// MB/s), but each request in flight holds a reply buffer of up to 1 MiB
	// on the heap: reading 50,000 guest files, the daemon's peak RSS was
	// 168 MiB with 16 MiB and 143 with 4. Read-ahead only grows on
	// sequential access, so random readers do not pay for it.
	readAheadKiB = 4096
	// cacheTimeout is how long the kernel trusts entries and attributes.
	// The archive is immutable, so it can trust them for as long as it
	// likes; a day keeps the number finite.
	cacheTimeout = 24 * time.Hour
)

// Mount mounts root at dir and returns once the kernel has accepted the
// mount (FUSE INIT is done), so the caller can report the mount as ready.
func Mount(dir string, root *Root, mo MountOptions) (*Server, error) {
	timeout := cacheTimeout
	flog := mo.Log
	opts := &gofs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout, // nothing will ever appear
		RootStableAttr:  &gofs.StableAttr{Ino: 1},
		MountOptions: fuse.MountOptions{
			FsName:        mo.FsName,
			Name:          "ovfmount", // df -T shows fuse.ovfmount
			AllowOther:    mo.AllowOther,
			MaxWrite:      maxRead, // go-fuse derives max_read and max_pages from it
			MaxBackground: maxBackground,
			// The mount is read-only for the kernel too, so writes fail
			// with EROFS before they reach us; unless it has an overlay.
			Options: append(mountMode(root.opts.Writable), mo.KernelOptions...),
			// As root, mount(2) directly: no fusermount3 process per mount
			// (faster, and it works where fusermount3 is missing). go-fuse
			// falls back to fusermount3 when that fails.
			DirectMount:      os.Geteuid() == 0,
			DirectMountFlags: mountFlags(root.opts.Writable),
			// Without FUSE_DIRECT_IO_ALLOW_MMAP, which go-fuse does not ask
			// for by default, the kernel refuses a shared mapping of a
			// file opened with FOPEN_DIRECT_IO (Options.DirectIO) with
			// ENODEV; with it (Linux 6.6 and later), the mapping is served
			// through the page cache while read(2) stays direct. Files
			// opened without direct I/O are unaffected.
			ExtraCapabilities: fuse.CAP_DIRECT_IO_ALLOW_MMAP,
			Debug:             mo.Debug,
			Logger:            log.New(flog, "", 0),
			// A panic in a handler must not take the mount down: log it
			// with its stack and answer that one request with EIO.
			PanicHandler: func(v any) fuse.Status {
				flog.Error().Str("panic", fmt.Sprint(v)).Str("stack", string(debug.Stack())).Msg("recovered from a panic in a FUSE handler; answered EIO")
				return fuse.EIO
			},
		},
		Logger: log.New(flog, "", 0),
	}
	if mo.DefaultPermissions {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "default_permissions")
	}
	var srv *fuse.Server
	var err error
	said := captureFusermount(func() { srv, err = gofs.Mount(dir, root, opts) })
	if err != nil {
		return nil, mountError(err, said)
	}
	for _, msg := range said {
		flog.Warn().Msg(msg) // a mount that succeeded with a remark
	}
	if root.opts.DirectIO && srv.KernelSettings().Flags64()&fuse.CAP_DIRECT_IO_ALLOW_MMAP == 0 {
		flog.Warn().Msg("the kernel did not grant FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6 and later do): with direct I/O, a shared mmap of a file fails with ENODEV; private mappings work")
	}
	if err := mountinfo.SetReadAhead(dir, readAheadKiB); err != nil {
		flog.Debug().Err(err).Msg("read-ahead left at the kernel's default (raising it needs root)")
	}
	return &Server{srv: srv}, nil
}

// mountMode is the mount's "ro" option, which a mount that takes writes
// (an overlay's) goes without: the nodes then refuse every write but
// those to writable views (see write.go).
func mountMode(writable bool) []string {
	if writable {
		return []string{"rw"}
	}
	return []string{"ro"}
}

func mountFlags(writable bool) uintptr {
	if writable {
		return syscall.MS_NOSUID | syscall.MS_NODEV
	}
	return syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV
}
