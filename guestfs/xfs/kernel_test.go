package xfs

import (
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

func TestKernelV5Default(t *testing.T) {
	testutil.RequireTool(t, "xfs_io")
	testutil.RequireTool(t, "setfattr")
	img := mkfs(t, 256)
	mnt, umount := mountRW(t, img)
	start := time.Now()
	sh(t, mnt, populateScript(400, 20000, true))
	populateGo(t, mnt)
	t.Logf("populated in %v", time.Since(start))
	umount()
	fsys := openImage(t, img)
	got := guestfstest.Walk(t, fsys, 1<<20)
	want := guestfstest.Tree(t, testutil.KernelMount(t, img, "xfs", "norecovery"))
	guestfstest.Equal(t, got, want, guestfstest.Compare{Owner: true, Perm: true, Nlink: true, Ino: true, Xattrs: true, Times: time.Nanosecond})
	t.Logf("%d paths compared, info %+v", len(want), fsys.Info())
}
