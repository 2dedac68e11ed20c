package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/internal/sample"
)

var (
	diskMu    sync.Mutex
	diskCache = map[string]string{}
)

// PartitionedDisk returns the path of a raw disk image of size bytes with
// an MBR partition table and one ext4 partition starting at 1 MiB, filled
// with about content bytes of real files (executables and libraries copied
// from /usr). Real binaries compress like real appliances do, unlike
// random or zero data. Images are built once per test process and size, in
// a folder that outlives the calling test, so callers must not modify them.
func PartitionedDisk(t testing.TB, size, content int64) string {
	t.Helper()
	RequireTool(t, "mkfs.ext4")
	key := fmt.Sprint(size, "/", content)
	diskMu.Lock()
	defer diskMu.Unlock()
	if p, ok := diskCache[key]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "ovfmount-testdisk-")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := sample.CopyRealFiles(src, content); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.raw")
	if err := sample.PartitionedDisk(img, src, size); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(src)
	diskCache[key] = img
	return img
}

// QemuImg runs qemu-img with args and fails the test on error.
func QemuImg(t testing.TB, args ...string) {
	t.Helper()
	RequireTool(t, "qemu-img")
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Convert writes src (any format qemu-img reads) as format fmt to a new file
// in dir, with the given -o options (may be empty), and returns its path.
func Convert(t testing.TB, dir, src, format, opts string) string {
	t.Helper()
	name := format
	if opts != "" {
		name += "-" + strings.NewReplacer(",", "-", "=", "_").Replace(opts)
	}
	out := filepath.Join(dir, name+".img")
	args := []string{"convert", "-O", format}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	QemuImg(t, append(args, src, out)...)
	return out
}

// RawOracle decodes img (format autodetected, or fmt when non-empty) with
// qemu-img convert -O raw and returns the path of the raw file: the
// independent answer a decoder must match byte for byte.
func RawOracle(t testing.TB, dir, img, format string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(img)+".oracle.raw")
	args := []string{"convert"}
	if format != "" {
		args = append(args, "-f", format)
	}
	QemuImg(t, append(args, "-O", "raw", img, out)...)
	return out
}
