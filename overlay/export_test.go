package overlay

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// exportFixture is a disk whose base has data in its first half only and
// whose overlay writes, zeroes and discards across the whole of it,
// crossing 64 KiB clusters and a 512 MiB L2 range, and ends mid-cluster.
//
// It returns the offset of its last 1,000 bytes, written with 7s.
func exportFixture(t *testing.T) (*Disk, int64, BaseExtent) {
	ctx := context.Background()
	const size = 600<<20 + 12345
	base := &patternBase{size: size}
	half := int64(8 << 20)
	baseExt := func(off int64) (Extent, error) {
		if off < half {
			return Extent{0, half, true}, nil
		}
		return Extent{half, size - half, false}, nil
	}
	hb := &halfBase{patternBase: base, half: half}
	s := openTest(t, t.TempDir(), "k")
	t.Cleanup(func() { s.Close() })
	d, err := s.Disk("disk1.vmdk", size, hb)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		off  int64
		n    int
		zero bool
	}{
		{0, 5000, false}, {70000, 200000, false}, {1 << 20, 1 << 20, true}, {6 << 20, 4 << 20, false},
		{300 << 20, 3 * BlockSize, false}, {512<<20 - 100, 300, false},
		{size - 1000, 1000, false}, {100 << 20, 8 << 20, true}, {550 << 20, 4096, false},
	}
	for i, w := range writes {
		if w.zero {
			if err := d.Discard(ctx, w.off, int64(w.n)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := bytes.Repeat([]byte{byte(i + 1)}, w.n)
		if err := d.WriteAt(ctx, p, w.off); err != nil {
			t.Fatal(err)
		}
	}
	return d, size - 1000, baseExt
}

// halfBase is a pattern in its first half and zeros after.
type halfBase struct {
	*patternBase
	half int64
}

func (b *halfBase) ReadAt(ctx context.Context, p []byte, off int64) error {
	if err := b.patternBase.ReadAt(ctx, p, off); err != nil {
		return err
	}
	for i := range p {
		if off+int64(i) >= b.half {
			p[i] = 0
		}
	}
	return nil
}

func TestExportRaw(t *testing.T) {
	d, last, baseExt := exportFixture(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "out.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ExportImage(context.Background(), d, f, "raw", baseExt); err != nil {
		t.Fatal(err)
	}
	// The file equals the view, read 1 MiB at a time.
	if fi, err := f.Stat(); err != nil || fi.Size() != d.Size() {
		t.Fatalf("the raw export is %v bytes (%v), want %d", fi.Size(), err, d.Size())
	}
	got, want := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < d.Size(); off += 1 << 20 {
		n := min(1<<20, d.Size()-off)
		if _, err := f.ReadAt(got[:n], off); err != nil {
			t.Fatal(err)
		}
		if err := d.ReadAt(context.Background(), want[:n], off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("the raw export differs from the view in the MiB at %d", off)
		}
	}
	tail := make([]byte, 1000)
	if _, err := f.ReadAt(tail, last); err != nil || !bytes.Equal(tail, bytes.Repeat([]byte{7}, 1000)) {
		t.Fatalf("the last write is not at the end of the export (%v)", err)
	}
}

func TestExportQCOW2(t *testing.T) {
	qemuImg := testutil.RequireTool(t, "qemu-img")
	d, _, baseExt := exportFixture(t)
	dir := t.TempDir()
	for _, format := range []string{"raw", "qcow2"} {
		f, err := os.Create(filepath.Join(dir, "out."+format))
		if err != nil {
			t.Fatal(err)
		}
		if err := ExportImage(context.Background(), d, f, format, baseExt); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	q, r := filepath.Join(dir, "out.qcow2"), filepath.Join(dir, "out.raw")
	if out, err := exec.Command(qemuImg, "check", q).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	if out, err := exec.Command(qemuImg, "compare", "-f", "qcow2", "-F", "raw", q, r).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare: %v\n%s", err, out)
	}
	fi, err := os.Stat(q)
	if err != nil {
		t.Fatal(err)
	}
	// Only clusters with data are stored: far less than the 600 MiB disk.
	if fi.Size() > 32<<20 {
		t.Errorf("the qcow2 export is %d bytes", fi.Size())
	}
}

// TestExportWithoutBaseExtents reads everything and still skips zeros.
func TestExportWithoutBaseExtents(t *testing.T) {
	ctx := context.Background()
	base := &patternBase{size: 3<<20 + 7}
	s := openTest(t, t.TempDir(), "k")
	defer s.Close()
	d := openDiskT(t, s, "d", base)
	if err := d.Discard(ctx, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "x.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ExportImage(ctx, d, f, "qcow2", nil); err != nil {
		t.Fatal(err)
	}
	if qemuImg, err := exec.LookPath("qemu-img"); err == nil {
		r, err := os.Create(filepath.Join(t.TempDir(), "x.raw"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := ExportImage(ctx, d, r, "raw", nil); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(qemuImg, "check", f.Name()).CombinedOutput(); err != nil {
			t.Errorf("qemu-img check: %v\n%s", err, out)
		}
		if out, err := exec.Command(qemuImg, "compare", "-f", "qcow2", "-F", "raw", f.Name(), r.Name()).CombinedOutput(); err != nil {
			t.Errorf("qemu-img compare: %v\n%s", err, out)
		}
	}
	if err := ExportImage(ctx, d, f, "vmdk", nil); err == nil {
		t.Error("an unknown format was accepted")
	}
}

// TestQCOW2ManyRefcountBlocks writes more clusters than one refcount
// block covers (32,768, 2 GiB of host file), one byte each so the file
// stays sparse, and has qemu-img check the refcounts and qemu-io read
// clusters back.
func TestQCOW2ManyRefcountBlocks(t *testing.T) {
	qemuImg := testutil.RequireTool(t, "qemu-img")
	qemuIO := testutil.RequireTool(t, "qemu-io")
	const clusters = 33000
	f, err := os.Create(filepath.Join(t.TempDir(), "big.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q := newQcowWriter(f, 3<<30)
	for i := int64(0); i < clusters; i++ {
		if err := q.cluster(i*qcowCluster, []byte{byte(i) | 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.finish(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(qemuImg, "check", f.Name()).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	for _, i := range []int64{0, 8191, 8192, 32767, 32768, clusters - 1} {
		cmd := fmt.Sprintf("read -P %d %d 1", byte(i)|1, i*qcowCluster)
		if out, err := exec.Command(qemuIO, "-f", "qcow2", "-r", "-c", cmd, "-c", fmt.Sprintf("read -P 0 %d 65535", i*qcowCluster+1), f.Name()).CombinedOutput(); err != nil || bytes.Contains(out, []byte("failed")) || bytes.Contains(out, []byte("Pattern verification")) {
			t.Errorf("cluster %d: %v\n%s", i, err, out)
		}
	}
}
