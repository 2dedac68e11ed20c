// Command fusemin is the smallest go-fuse server that serves a file the
// way ovfmount does: the reference the bench's "roundtrip" section holds
// ovfmount's per-read cost against. It mounts, read-only, a folder with one
// regular file, "file", of -size bytes whose contents come from a fixed
// 64 MiB in-memory pattern (byte i is pattern[i mod 64 MiB]); Read answers
// with a slice of that buffer and copies nothing itself.
//
// The mount options are ovfmount's (see fs.Mount): the same max_write and
// max_read, max_background, "ro", a direct mount as root, entry and
// attribute timeouts of a day, FUSE_DIRECT_IO_ALLOW_MMAP, FOPEN_KEEP_CACHE
// on open, or FOPEN_DIRECT_IO with -direct-io, as ovfmount --direct-io. The
// only differences left are what ovfmount does per request.
//
//	fusemin [-size N] [-direct-io] [-reply data|vector] [-cpu-profile F] MOUNTPOINT
//
// It prints "ready" on stdout once the kernel has accepted the mount, and
// unmounts on SIGINT or SIGTERM (or when unmounted with fusermount3 -u).
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

const (
	patternSize = 64 << 20
	// maxRead is ovfmount's: the largest read the kernel sends.
	maxRead = 1<<20 - 3*4096
)

var (
	size      = flag.Int64("size", 1<<30, "size of the served file in bytes")
	directIO  = flag.Bool("direct-io", false, "open the file with FOPEN_DIRECT_IO, as ovfmount --direct-io")
	reply     = flag.String("reply", "data", "how Read replies: data (fuse.ReadResultData) or vector (fuse.ReadResultVector, written by writev without go-fuse's splice attempt)")
	profile   = flag.String("cpu-profile", "", "write a CPU profile of the mount's life to this file")
	debugFUSE = flag.Bool("debug", false, "log every FUSE request")
)

// pattern holds patternSize bytes of fixed pseudo-random data followed by
// its first maxRead bytes again, so that any read is one contiguous slice.
var pattern []byte

type root struct{ gofs.Inode }

func (r *root) OnAdd(ctx context.Context) {
	f := r.NewPersistentInode(ctx, &file{}, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: 2})
	r.AddChild("file", f, true)
}

func (r *root) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o755
	out.Nlink = 2
	return 0
}

type file struct{ gofs.Inode }

func (f *file) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Nlink = 1
	out.Size = uint64(*size)
	out.Blksize = 4096
	out.Blocks = uint64(*size+511) / 512
	return 0
}

func (f *file) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	if *directIO {
		return nil, fuse.FOPEN_DIRECT_IO, 0
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (f *file) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off < 0 || off >= *size {
		return fuse.ReadResultData(nil), 0
	}
	n := min(int64(len(dest)), *size-off, maxRead)
	start := off % patternSize
	data := pattern[start : start+n]
	if *reply == "vector" {
		return fuse.ReadResultVector([][]byte{data}), 0
	}
	return fuse.ReadResultData(data), 0
}

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: fusemin [flags] MOUNTPOINT\n\nA minimal go-fuse server with ovfmount's mount options: the bench's reference.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || (*reply != "data" && *reply != "vector") {
		flag.Usage()
		os.Exit(2)
	}
	pattern = make([]byte, patternSize+maxRead)
	rand.NewChaCha8([32]byte{15}).Read(pattern[:patternSize])
	copy(pattern[patternSize:], pattern)

	if *profile != "" {
		pf, err := os.Create(*profile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			fail(err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	timeout := 24 * time.Hour
	opts := &gofs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		RootStableAttr:  &gofs.StableAttr{Ino: 1},
		MountOptions: fuse.MountOptions{
			FsName:            "fusemin",
			Name:              "fusemin",
			MaxWrite:          maxRead,
			MaxBackground:     64,
			Options:           []string{"ro"},
			DirectMount:       os.Geteuid() == 0,
			DirectMountFlags:  syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV,
			ExtraCapabilities: fuse.CAP_DIRECT_IO_ALLOW_MMAP,
			Debug:             *debugFUSE,
		},
	}
	srv, err := gofs.Mount(flag.Arg(0), &root{}, opts)
	if err != nil {
		fail(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		srv.Unmount()
	}()
	fmt.Println("ready")
	srv.Wait()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fusemin:", err)
	os.Exit(1)
}
