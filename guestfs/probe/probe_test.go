package probe

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestOpenPicksTheReader: each filesystem made by its own mkfs opens with
// its reader, as blkid names it; swap and zeros are no filesystem.
func TestOpenPicksTheReader(t *testing.T) {
	dir := t.TempDir()
	img := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(tool string, args ...string) {
		t.Helper()
		testutil.Run(t, testutil.RequireTool(t, tool), args...)
	}
	ext4 := img("ext4", 8<<20)
	run("mkfs.ext4", "-q", "-F", ext4)
	xfs := img("xfs", 300<<20)
	run("mkfs.xfs", "-q", "-f", xfs)
	vfat := img("vfat", 8<<20)
	run("mkfs.vfat", vfat)
	ntfs := img("ntfs", 16<<20)
	run("mkfs.ntfs", "-q", "-F", "-Q", ntfs)
	swap := img("swap", 8<<20)
	run("mkswap", "-q", swap)
	zeros := img("zeros", 8<<20)
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644)
	iso := filepath.Join(dir, "iso")
	run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-o", iso, src)

	for _, p := range []string{ext4, xfs, vfat, ntfs, iso, swap, zeros} {
		want := ""
		if out, err := exec.Command(testutil.RequireTool(t, "blkid"), "-p", "-o", "value", "-s", "TYPE", p).Output(); err == nil {
			want = strings.TrimSpace(string(out))
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		fsys, err := Open(f, st.Size())
		switch {
		case want == "swap" || want == "":
			if !errors.Is(err, guestfs.ErrNotFS) {
				t.Errorf("%s (blkid: %q): %v, want ErrNotFS", filepath.Base(p), want, err)
			}
		case err != nil:
			t.Errorf("%s: %v", filepath.Base(p), err)
		case fsys.Info().Type != want:
			t.Errorf("%s: opened as %s, blkid says %s", filepath.Base(p), fsys.Info().Type, want)
		}
		f.Close()
	}
}
