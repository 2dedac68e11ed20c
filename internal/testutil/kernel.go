package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// KernelAtLeast reports whether the running kernel is version major.minor
// or later, for tests of behaviour that a kernel version brought (FUSE
// capabilities, for one).
func KernelAtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", release, err)
	}
	return ma > major || ma == major && mi >= minor
}

// KernelMount mounts a filesystem image read-only through a loop device,
// with the host kernel's driver, as the oracle a guest filesystem reader
// is compared with; the test's cleanup unmounts it. opts are added to
// "ro,loop" (ext4 wants "noload" so that a journal is not replayed).
// Where the kernel cannot (not root, no loop devices, no driver for
// fstype) the test is skipped, or fails under OVFMOUNT_REQUIRE_TOOLS=1
// when running as root, where CI expects it to work.
func KernelMount(t testing.TB, image, fstype, opts string) string {
	t.Helper()
	dir := t.TempDir()
	o := "ro,loop"
	if opts != "" {
		o += "," + opts
	}
	out, err := exec.Command("mount", "-t", fstype, "-o", o, image, dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("kernel mount of a %s image failed: %v: %s", fstype, err, out)
		if os.Geteuid() == 0 && os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		// A mount can be busy for a moment after the test is done with it
		// (make test once failed so): try again for a while.
		var out []byte
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out, err = exec.Command("umount", dir).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "busy") || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
