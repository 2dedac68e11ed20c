package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestSmallReadsAcrossPieces has the kernel fetch a few pages at a time
// where a disk view switches between data and holes. Each such read is
// answered from several file pieces, the data ones off a page boundary
// inside the tar; a reply pipe sized for the read in bytes holds too few
// buffers for them, and the kernel takes a short reply for the end of the
// file. (Reads with O_DIRECT would not show it: the kernel completes a
// short direct read from the page cache.)
func TestSmallReadsAcrossPieces(t *testing.T) {
	testutil.RequireFUSE(t)
	const cluster = 4096
	raw := filepath.Join(t.TempDir(), "raw")
	data := make([]byte, 1<<20)
	for c := 0; c < len(data)/cluster; c += 2 { // every other cluster holds data
		for i := range cluster {
			data[c*cluster+i] = byte(c + i%251 + 1)
		}
	}
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img")
	testutil.QemuImg(t, "convert", "-O", "qcow2", "-o", "cluster_size=4096", raw, img)
	// On tmpfs every page is a folio of its own, as on any filesystem
	// under memory pressure; large folios would hide the extra buffers.
	archive := packOVA(t, map[string]string{"disk1.qcow2": img})
	if shm, err := os.MkdirTemp("/dev/shm", "ovfmount-test"); err == nil {
		t.Cleanup(func() { os.RemoveAll(shm) })
		b, _ := os.ReadFile(archive)
		archive = filepath.Join(shm, "app.ova")
		if err := os.WriteFile(archive, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := mountArchive(t, archive)

	f, err := os.Open(m.path("disks/disk1.qcow2.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	// No read-ahead, and no cached pages: each read below reaches the
	// daemon as one request of exactly its size.
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16*cluster)
	// Ascending, so the pooled pipes are still small: six pages of
	// alternating data and holes take ten buffers, and the pipe for a
	// six-page reply holds eight.
	for pages := 2; pages <= 16; pages++ {
		size := pages * cluster
		for off := 0; off+size <= len(data); off += cluster {
			unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
			n, err := retryEINTR(func() (int, error) { return unix.Pread(fd, buf[:size], int64(off)) })
			if err != nil || n != size || !bytes.Equal(buf[:n], data[off:off+size]) {
				t.Fatalf("read %d at %d: %d bytes, %v; want the raw image's %d", size, off, n, err, size)
			}
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != int64(len(data)) {
		t.Fatalf("after the reads the view is %d bytes (%v), want %d", st.Size, err, len(data))
	}
}
