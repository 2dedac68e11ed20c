package xfs

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestDirtyLog shuts a mounted filesystem down after flushing its log, so
// that the log holds committed changes and no unmount record, as after a
// crash: the reader must say so in Info.Warnings and read the volume as
// it stands, which is what the kernel shows with norecovery.
func TestDirtyLog(t *testing.T) {
	t.Parallel()
	io := testutil.RequireTool(t, "xfs_io")
	img := mkfs(t, 64)
	if w := openImage(t, img).Info().Warnings; len(w) != 0 {
		t.Errorf("a new filesystem: warnings %q", w)
	}
	// A first tree, unmounted cleanly, so that it is written in place.
	mnt, umount := mountRW(t, img)
	sh(t, mnt, `mkdir -p a/b d && echo before > a/b/f && for i in $(seq 1 30); do echo $i > d/f$i; done`)
	umount()
	// Changes that only the log holds when the filesystem stops.
	mnt, umount = mountRW(t, img)
	sh(t, mnt, `for i in $(seq 1 50); do echo $i > a/f$i; done && mv a/b a/c && ln -s x a/l && rm d/f1`)
	if out, err := exec.Command(io, "-x", "-c", "shutdown -f", mnt).CombinedOutput(); err != nil {
		t.Fatalf("xfs_io shutdown: %v: %s", err, out)
	}
	umount()
	fsys := openImage(t, img)
	w := fsys.Info().Warnings
	if len(w) != 1 || !strings.Contains(w[0], "needs recovery") {
		t.Fatalf("warnings %q, want one saying the log needs recovery", w)
	}
	recovered := filepath.Join(tempDir(t), "copy.img")
	sh(t, "/", "cp --sparse=always "+img+" "+recovered)
	got := guestfstest.Walk(t, fsys, 1000)
	want := guestfstest.Tree(t, testutil.KernelMount(t, img, "xfs", "norecovery"))
	guestfstest.Equal(t, got, want, guestfstest.Compare{Owner: true, Perm: true, Nlink: true, Ino: true, Xattrs: true, Times: time.Nanosecond})
	t.Logf("%d paths compared with the kernel's norecovery view; warning: %s", len(want), w[0])

	// Once the kernel has replayed the log (a read-write mount), the log
	// is clean again.
	_, umount2 := mountRW(t, recovered)
	umount2()
	if w := openImage(t, recovered).Info().Warnings; len(w) != 0 {
		t.Errorf("after recovery: warnings %q", w)
	}
}
