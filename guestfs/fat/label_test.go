package fat

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestLabel follows a volume through the label states blkid tells apart:
// none, the same label in the boot sector and the root entry, a boot
// sector label that disagrees with the root entry (the root entry wins),
// a label cleared by mlabel, on FAT12 and FAT32.
func TestLabel(t *testing.T) {
	testutil.RequireTool(t, "mlabel")
	for _, c := range []struct {
		name string
		size int64
		args []string
	}{{"FAT12", 2 << 20, []string{"-F", "12"}}, {"FAT32", 34 << 20, []string{"-F", "32", "-S", "512", "-s", "1"}}} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "l.img")
			os.WriteFile(img, nil, 0o644)
			os.Truncate(img, c.size)
			sh(t, "mkfs.vfat", append(c.args, img)...)
			check := func(state string) {
				t.Helper()
				fsys, f := openImage(t, img)
				checkBlkid(t, fsys, img)
				f.Close()
				t.Logf("%s: label %q uuid %q", state, fsys.Info().Label, fsys.Info().UUID)
			}
			check("no label")
			sh(t, "mlabel", "-i", img, "::Disk Lbl")
			check("mlabel")
			fsys, f := openImage(t, img)
			f.Close()
			off := int64(43)
			if fsys.bits == 32 {
				off = 71
			}
			fd, _ := os.OpenFile(img, os.O_RDWR, 0)
			fd.WriteAt([]byte("BOOTLABEL  "), off)
			fd.Close()
			check("boot sector label differs")
			sh(t, "mlabel", "-c", "-i", img)
			check("cleared")
			fd, _ = os.OpenFile(img, os.O_RDWR, 0)
			fd.WriteAt([]byte("BOOTONLY   "), off)
			fd.Close()
			check("boot sector label only")
			sh(t, "mlabel", "-N", "0badcafe", "-i", img, "::AGAIN")
			check("new serial")
		})
	}
}
