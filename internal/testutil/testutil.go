// Package testutil holds what the tests of several packages share: finding
// the oracle tools and the real-world fixtures, and building disk images
// with real content at test time so that nothing large is committed.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireTool returns the path of an external tool the test needs (an
// oracle such as qemu-img, or fusermount3). Where it is absent the test is
// skipped with a message naming the package to install, unless
// OVFMOUNT_REQUIRE_TOOLS=1 (set by `make test`, which installs them), in
// which case the test fails: a skipped oracle must never pass silently in CI.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	pkg := map[string]string{
		"qemu-img": "qemu-utils", "qemu-io": "qemu-utils", "fusermount3": "fuse3", "mount.fuse3": "fuse3",
		"mkfs.ext4": "e2fsprogs", "openssl": "openssl", "tar": "tar", "gzip": "gzip", "zcat": "gzip",
		"pigz": "pigz", "nginx": "nginx", "losetup": "mount", "sha256sum": "coreutils",
		"sfdisk": "fdisk", "sgdisk": "gdisk", "pvcreate": "lvm2", "vgcreate": "lvm2", "lvcreate": "lvm2", "lvs": "lvm2",
		"mkfs.xfs": "xfsprogs", "xfs_io": "xfsprogs", "mkfs.ntfs": "ntfs-3g", "ntfs-3g": "ntfs-3g", "ntfscat": "ntfs-3g",
		"hivexregedit": "libwin-hivex-perl", "hivexml": "libhivex-bin",
		"mkfs.vfat": "dosfstools", "mcopy": "mtools", "mdir": "mtools", "xorriso": "xorriso", "fls": "sleuthkit",
		"icat": "sleuthkit", "debugfs": "e2fsprogs", "setfattr": "attr", "blkid": "util-linux", "mlabel": "mtools", "mshortname": "mtools",
		"e2fsck": "e2fsprogs", "tune2fs": "e2fsprogs", "dumpe2fs": "e2fsprogs",
		"partx": "util-linux", "xfs_db": "xfsprogs",
		"ntfsinfo": "ntfs-3g", "nbdinfo": "libnbd-bin", "nbdcopy": "libnbd-bin",
		"zip": "zip", "unzip": "unzip",
	}[name]
	msg := name + " is not installed (Debian package " + pkg + "; `make test` installs it when run as root)"
	if os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above " + file)
		}
		dir = parent
	}
}

// RealFixtures returns the folder of real-world archives and disks made by
// other projects' tools (../shared/fixtures/real next to the repository, or
// $OVFMOUNT_FIXTURES). They are kept outside the repository, so a test that
// needs them is skipped, with this explanation, where they are absent.
func RealFixtures(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("OVFMOUNT_FIXTURES")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "fixtures", "real")
	}
	if _, err := os.Stat(filepath.Join(dir, "SOURCES.md")); err != nil {
		t.Skipf("real-world fixtures not found at %s (set OVFMOUNT_FIXTURES to their folder to run this test)", dir)
	}
	return dir
}

// RequireFUSE skips the test, with the reason, where FUSE mounts cannot be
// made (no /dev/fuse, or neither root nor fusermount3). With
// OVFMOUNT_REQUIRE_FUSE=1, which `make test` sets where /dev/fuse exists,
// it fails instead, so CI never counts a skipped mount test as passed.
func RequireFUSE(t testing.TB) {
	t.Helper()
	reason := ""
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		reason = "FUSE is not available here (" + err.Error() + ")"
	} else {
		f.Close()
		if os.Geteuid() != 0 {
			if _, err := exec.LookPath("fusermount3"); err != nil {
				reason = "fusermount3 is not installed and the test does not run as root (Debian package fuse3)"
			}
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv("OVFMOUNT_REQUIRE_FUSE") == "1" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}
