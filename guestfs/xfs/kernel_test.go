package xfs

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestKernel fills v5 images through a read-write kernel mount, then
// compares the reader with the kernel's read-only view of the same image:
// content, types, modes, owners, link counts, inode numbers, attributes
// and times to the nanosecond, birth times with statx, flags with the
// FS_IOC_GETFLAGS the kernel reports.
func TestKernel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		args         []string
		real         bool
		frag, bigDir int
		bigtime      bool
		fragLevel    int
		blockSize    int
		// index is the magic of the index block the big directory
		// needs: node (0x3ebe) or leaf (0x3df1).
		index string
	}{
		// mkfs.xfs 6.1's defaults: 4 KiB blocks, 512-byte inodes, bigtime.
		{"default", nil, true, 400, 20000, true, 1, 4096, "0x3ebe"},
		// 1 KiB blocks and 8 KiB directory blocks: directory blocks
		// span several filesystem blocks, and 1300 extents need a bmbt
		// of depth 2; legacy 32-bit times.
		{"1k-dir8k-nobigtime", []string{"-b", "size=1024", "-n", "size=8192", "-m", "bigtime=0"}, false, 1300, 2000, false, 2, 1024, "0x3ebe"},
		// The largest inodes and directory blocks, 64-bit extent counts.
		{"isize2048-dir64k-nrext64", []string{"-i", "size=2048,nrext64=1", "-n", "size=65536"}, false, 200, 3000, true, 1, 4096, "0x3df1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testutil.RequireTool(t, "xfs_io")
			testutil.RequireTool(t, "setfattr")
			img := mkfs(t, 256, tc.args...)
			mnt, umount := mountRW(t, img)
			start := time.Now()
			sh(t, mnt, populateScript(tc.real, tc.frag, tc.bigDir, tc.bigtime))
			populateGo(t, mnt)
			umount()
			t.Logf("populated in %v", time.Since(start))

			start = time.Now()
			fsys := openImage(t, img)
			got := guestfstest.Walk(t, fsys, 1<<20)
			t.Logf("walked in %v", time.Since(start))
			host := testutil.KernelMount(t, img, "xfs", "norecovery")
			// Before anything reads the files through the kernel: a read
			// caches pages, and SEEK_DATA counts cached pages of
			// unwritten extents as data.
			checkSparse(t, fsys, got, host, "sparse")
			want := guestfstest.Tree(t, host)
			guestfstest.Equal(t, got, want, guestfstest.Compare{Owner: true, Perm: true, Nlink: true, Ino: true, Xattrs: true, Times: time.Nanosecond})
			checkBirthAndFlags(t, got, host)
			requireForm(t, img, got, "sparse/fragmented", "btree", tc.fragLevel)
			requireForm(t, img, got, "dirs/empty", "local", 0)
			requireForm(t, img, got, "dirs/d5", "local", 0)
			requireForm(t, img, got, "dirs/d60", "extents", 0)
			requireIndex(t, img, got, "dirs/d60", tc.blockSize, "")
			requireIndex(t, img, got, "dirs/big", tc.blockSize, tc.index)
			if w := fsys.Info().Warnings; len(w) != 0 {
				t.Errorf("warnings on a cleanly unmounted image: %q", w)
			}
			t.Logf("%d paths compared", len(want))
		})
	}
}

// checkBirthAndFlags compares birth times (statx) and the immutable,
// append-only and nodump flags (FS_IOC_GETFLAGS) with the kernel's.
func checkBirthAndFlags(t *testing.T, got map[string]*guestfstest.Node, host string) {
	t.Helper()
	bad := 0
	for p, n := range got {
		var sx unix.Statx_t
		hp := host + "/" + p
		if err := unix.Statx(unix.AT_FDCWD, hp, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &sx); err != nil {
			t.Fatal(err)
		}
		if sx.Mask&unix.STATX_BTIME != 0 {
			if want := time.Unix(sx.Btime.Sec, int64(sx.Btime.Nsec)); !n.Attr.Btime.Equal(want) && bad < 10 {
				bad++
				t.Errorf("%s: btime %v, want %v", p, n.Attr.Btime, want)
			}
		}
		if n.Attr.Mode&guestfs.TypeMask != guestfs.TypeRegular && n.Attr.Mode&guestfs.TypeMask != guestfs.TypeDir {
			continue
		}
		fd, err := unix.Open(hp, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		fl, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		// FS_IMMUTABLE_FL, FS_APPEND_FL, FS_NODUMP_FL (linux/fs.h)
		var want guestfs.Flags
		if fl&0x10 != 0 {
			want |= guestfs.FlagImmutable
		}
		if fl&0x20 != 0 {
			want |= guestfs.FlagAppend
		}
		if fl&0x40 != 0 {
			want |= guestfs.FlagNoDump
		}
		if n.Attr.Flags != want && bad < 10 {
			bad++
			t.Errorf("%s: flags %v, want %v", p, n.Attr.Flags, want)
		}
	}
	for _, p := range []string{"flags/immutable", "flags/append", "flags/nodump"} {
		if !strings.Contains(got[p].Attr.Flags.String(), strings.TrimPrefix(p, "flags/")) {
			t.Errorf("%s: flags %v", p, got[p].Attr.Flags)
		}
	}
}
