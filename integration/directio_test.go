package integration

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestDirectIO mounts with -o direct_io, where the kernel passes every
// read(2) to the daemon as the reader issued it, with no page cache to
// round it to pages or to fill a short reply. Decoded views (a
// streamOptimized VMDK and a zlib QCOW2) and a stored member, of a size
// that is not a multiple of a page, are read whole at several read sizes
// and across their ends, against qemu-img convert -O raw and the member's
// own bytes. A private and a shared mapping of each must read what read(2)
// reads: Linux 6.6 and later grant FUSE_DIRECT_IO_ALLOW_MMAP, without which
// a shared mapping fails with ENODEV; an older kernel must get a warning in
// the log instead, and the private mappings only.
func TestDirectIO(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 16<<20, 6<<20)
	dir := t.TempDir()
	vmdk := filepath.Join(dir, "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	qcow2 := filepath.Join(dir, "disk2.qcow2")
	testutil.QemuImg(t, "convert", "-c", "-O", "qcow2", "-o", "compression_type=zlib", raw, qcow2)
	payload := make([]byte, 5<<20+12345)
	rand.New(rand.NewSource(11)).Read(payload)
	stored := filepath.Join(dir, "payload.bin")
	if err := os.WriteFile(stored, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	m := mountArchive(t, packOVA(t, map[string]string{"disk1.vmdk": vmdk, "disk2.qcow2": qcow2, "payload.bin": stored}, "disk1.vmdk", "disk2.qcow2"),
		"-o", "direct_io")
	if log := readFile(m.logFile); !strings.Contains(log, `"directIO":true`) {
		t.Errorf("the mounted line does not say direct I/O is on; log:\n%s", log)
	}
	refused := strings.Contains(readFile(m.logFile), "did not grant FUSE_DIRECT_IO_ALLOW_MMAP")
	if shared := testutil.KernelAtLeast(t, 6, 6); refused == shared {
		t.Errorf("Linux 6.6 or later: %v; the log says shared mappings are refused: %v", shared, refused)
	}
	maps := []int{syscall.MAP_PRIVATE, syscall.MAP_SHARED}
	if refused {
		maps = maps[:1]
	}

	oracles := map[string][]byte{"payload.bin": payload}
	for name, img := range map[string]string{"disks/disk1.vmdk.raw": vmdk, "disks/disk2.qcow2.raw": qcow2} {
		b, err := os.ReadFile(testutil.RawOracle(t, t.TempDir(), img, ""))
		if err != nil {
			t.Fatal(err)
		}
		oracles[name] = b
	}
	for name, want := range oracles {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(m.path(name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, n := range []int{4096, 1 << 20, 100000} {
				got := readWhole(t, f, n, len(want))
				if !bytes.Equal(got, want) {
					t.Fatalf("read whole with %d-byte reads: differs from the oracle at byte %d", n, firstDiff(got, want))
				}
				checkAcrossEnd(t, f, n, want)
			}
			for _, flag := range maps {
				checkMap(t, f, flag, want)
			}
		})
	}
}

// readWhole reads f from its start to its end with read(2) calls of n
// bytes, each of which must return n bytes, or what is left before the
// end: a short reply from the daemon reaches the reader as it is.
func readWhole(t *testing.T, f *os.File, n, size int) []byte {
	t.Helper()
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 0, size)
	buf := make([]byte, n)
	for {
		k, err := retryEINTR(func() (int, error) { return syscall.Read(int(f.Fd()), buf) })
		if err != nil {
			t.Fatalf("read(%d) at %d: %v", n, len(out), err)
		}
		if k == 0 {
			break
		}
		if want := min(n, size-len(out)); k != want {
			t.Fatalf("read(%d) at %d returned %d bytes, want %d", n, len(out), k, want)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

// checkAcrossEnd reads n bytes starting n/2 before the end (a short read),
// and at the end (nothing).
func checkAcrossEnd(t *testing.T, f *os.File, n int, want []byte) {
	t.Helper()
	size := int64(len(want))
	off := size - int64(n/2)
	if got := pread(t, f, n, off); !bytes.Equal(got, want[off:]) {
		t.Errorf("pread(%d bytes at %d, across the end) returned %d bytes that differ; want the last %d", n, off, len(got), size-off)
	}
	if got := pread(t, f, n, size); len(got) != 0 {
		t.Errorf("pread(%d bytes at the end) returned %d bytes", n, len(got))
	}
}

// checkMap maps f, privately or shared, and compares the mapping with what
// read(2) gave.
func checkMap(t *testing.T, f *os.File, flag int, read []byte) {
	t.Helper()
	kind := map[int]string{syscall.MAP_PRIVATE: "MAP_PRIVATE", syscall.MAP_SHARED: "MAP_SHARED"}[flag]
	m, err := syscall.Mmap(int(f.Fd()), 0, len(read), syscall.PROT_READ, flag)
	if err != nil {
		t.Fatalf("mmap(%s): %v", kind, err)
	}
	defer syscall.Munmap(m)
	if !bytes.Equal(m, read) {
		t.Errorf("the %s mapping differs from read(2) at byte %d", kind, firstDiff(m, read))
	}
}
