package qcow2

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// TestRealFixtures reads every QCOW2 image made by other projects' tools:
// those qemu-img can read are compared byte for byte, and those it refuses
// must fail here with the expected error.
func TestRealFixtures(t *testing.T) {
	dir := testutil.RealFixtures(t)
	testutil.RequireTool(t, "qemu-img")
	fixtures := map[string]struct {
		format   string
		err      error
		contains string
	}{
		// qemu-img convert of an ext2 image, 3 data clusters.
		"log2timeline-dfvfs/ext2.qcow2": {format: "qcow2 v3 (zlib)"},
		// 819 MiB virtual, no data; the file ends 16 bytes into its
		// last cluster, right after the L1 table.
		"kubevirt-containerized-data-importer/fs-overhead.qcow2": {format: "qcow2 v3 (zlib)"},
		// An overlay whose backing file cirros.raw is not in the store.
		"kubevirt-containerized-data-importer/cirros-snapshot1.qcow2": {err: blockmap.ErrUnsupported, contains: `backing file "cirros.raw"`},
	}

	// Every file the package recognises must be listed above, so that a
	// fixture added later is not silently left out.
	found := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if Detect(f, st.Size()) {
			rel, _ := filepath.Rel(dir, p)
			if _, ok := fixtures[filepath.ToSlash(rel)]; !ok {
				t.Errorf("%s is a QCOW image but has no expectation in this test", rel)
			}
			found++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found != len(fixtures) {
		t.Errorf("Detect found %d QCOW images, the test lists %d", found, len(fixtures))
	}

	for rel, want := range fixtures {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			path := filepath.Join(dir, rel)
			if want.err != nil {
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				st, _ := f.Stat()
				_, err = Open(f, st.Size(), Options{Name: rel})
				if !errors.Is(err, want.err) || !strings.Contains(err.Error(), want.contains) {
					t.Fatalf("Open: %v; want %v containing %q", err, want.err, want.contains)
				}
				// qemu-img refuses it too (it cannot find the parent).
				if out, err := exec.Command("qemu-img", "convert", "-O", "raw", path, filepath.Join(t.TempDir(), "x.raw")).CombinedOutput(); err == nil {
					t.Errorf("qemu-img convert succeeded on %s: %s", rel, out)
				}
				t.Logf("%s: %v", rel, err)
				return
			}
			img := openImage(t, path)
			if img.Format() != want.format {
				t.Errorf("Format() = %q, want %q", img.Format(), want.format)
			}
			o := openOracle(t, t.TempDir(), path)
			n := compareWhole(t, img, o)
			compareBoundaries(t, img, o, img.clusterSize, 64)
			compareRandom(t, img, o, 7, 64, 256<<10)
			runs, bytes := walkRuns(t, img)
			ext := compareQemuMap(t, img, path)
			t.Logf("%s: %d bytes compared; runs %v; bytes %v; %d qemu-img map extents", rel, n, runs, bytes, len(ext))
		})
	}
}
