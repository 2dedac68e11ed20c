package xfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// tempDir is a test's scratch folder, in memory (/dev/shm) where there
// is one: the tests make tens of thousands of small files and write image
// files, and a tmpfs does that many times faster than a loaded disk.
func tempDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "xfstest"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// mkfs makes a sparse image of sizeMiB and formats it with mkfs.xfs and
// args. The environment lets mkfs.xfs make filesystems below its 300 MiB
// floor, as xfstests does: small images keep the tests fast.
func mkfs(t testing.TB, sizeMiB int64, args ...string) string {
	t.Helper()
	mk := testutil.RequireTool(t, "mkfs.xfs")
	img := filepath.Join(tempDir(t), "xfs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, sizeMiB<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mk, append(append([]string{"-q", "-f"}, args...), img)...)
	cmd.Env = append(os.Environ(), "TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs %v: %v: %s", args, err, out)
	}
	return img
}

// sh runs a bash script in dir, failing the test with its output.
func sh(t testing.TB, dir, script string) string {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script failed: %v\n%s\nscript:\n%s", err, out, script)
	}
	return string(out)
}

// mountRW mounts an image read-write to fill it, and returns the folder
// and a function that unmounts it. nouuid lets a copy be mounted beside
// the original.
func mountRW(t testing.TB, img string) (string, func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatal("filling an XFS image needs root (a loop mount)")
		}
		t.Skip("filling an XFS image needs root (a loop mount)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "xfs", "-o", "loop,nouuid", img, dir).CombinedOutput(); err != nil {
		msg := "read-write loop mount failed: " + err.Error() + ": " + string(out)
		if os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	done := false
	umount := func() {
		if done {
			return
		}
		done = true
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v: %s", err, out)
		}
	}
	t.Cleanup(umount)
	return dir, umount
}

func openImage(t testing.TB, img string) *FS {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(fh, st.Size())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return fsys
}
