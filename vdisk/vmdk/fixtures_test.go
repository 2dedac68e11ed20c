package vmdk

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// TestRealFixtures opens every VMDK among the real-world fixtures and
// compares each with qemu-img; where qemu-img refuses a file, it checks
// that Open refuses it too, with the right error.
func TestRealFixtures(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	root := testutil.RealFixtures(t)
	for _, tc := range []struct {
		path    string
		member  string // inside the tar at path
		format  string
		warns   int
		wantErr error  // qemu-img refuses the file as well
		errText string // part of the expected error
	}{
		{path: "strozfriedberg-vmdk-rs/monolithicSparse.vmdk", format: "vmdk monolithicSparse v1"},
		{path: "strozfriedberg-vmdk-rs/streamOptimized.vmdk", format: "vmdk streamOptimized v3"},
		{path: "strozfriedberg-vmdk-rs/twoGbMaxExtentSparse.vmdk", format: "vmdk twoGbMaxExtentSparse (1 extent)"},
		{path: "strozfriedberg-vmdk-rs/vmfs_thick.vmdk", format: "vmdk vmfs (1 extent)"},
		{path: "strozfriedberg-vmdk-rs/twoGbMaxExtentSparse-s001.vmdk", wantErr: blockmap.ErrUnsupported, errText: "no embedded descriptor"},
		{path: "glennmatthews-cot/input.vmdk", format: "vmdk streamOptimized v3"},
		{path: "glennmatthews-cot/blank.vmdk", format: "vmdk streamOptimized v3"},
		{path: "glennmatthews-cot/ubuntu.2.0-disk1.vmdk", format: "vmdk streamOptimized v3 (GD at end)"},
		{path: "log2timeline-dfvfs/ext2.vmdk", format: "vmdk monolithicSparse v1"},
		{path: "kubevirt-containerized-data-importer/fake.ova", member: "disk1.vmdk", format: "vmdk monolithicSparse v1"},
		{path: "kubevirt-containerized-data-importer/invalid-qcow-large-memory.img", wantErr: blockmap.ErrCorrupt, errText: "grain size of 3456 sectors"},
	} {
		t.Run(strings.ReplaceAll(tc.path+tc.member, "/", "_"), func(t *testing.T) {
			path := filepath.Join(root, tc.path)
			dir := filepath.Dir(path)
			if tc.member != "" {
				dir = t.TempDir()
				path = filepath.Join(dir, tc.member)
				writeFile(t, path, testutil.TarMember(t, filepath.Join(root, tc.path), tc.member))
			}
			if tc.wantErr != nil {
				if out, err := exec.Command("qemu-img", "info", path).CombinedOutput(); err == nil {
					t.Fatalf("qemu-img opens %s, so the test expects the wrong thing:\n%s", tc.path, out)
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				before := ms.TotalAlloc
				_, err := openFile(t, path, dirResolver(t, dir))
				runtime.ReadMemStats(&ms)
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("Open: %v; want %v mentioning %q", err, tc.wantErr, tc.errText)
				}
				if alloc := ms.TotalAlloc - before; alloc > 1<<20 {
					t.Fatalf("Open allocated %d bytes before refusing the file", alloc)
				}
				t.Logf("refused as qemu-img does: %v", err)
				return
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			if !Detect(f, st.Size()) {
				t.Error("Detect = false")
			}
			im, err := openFile(t, path, dirResolver(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			if im.Format() != tc.format {
				t.Errorf("Format() = %q, want %q", im.Format(), tc.format)
			}
			if len(im.Warnings()) != tc.warns {
				t.Errorf("Warnings() = %q, want %d", im.Warnings(), tc.warns)
			}
			oracle := testutil.RawOracle(t, t.TempDir(), path, "vmdk")
			cs := compareImage(t, im, oracle, 64<<10)
			t.Logf("%s: %d bytes compared, %d proven zero on both sides, %d reads", im.Format(), cs.bytes, cs.skipped, cs.reads)
		})
	}
}

// TestNotAVMDK is the 4-byte "ABCD" disk of the openstack-glance OVA:
// Detect says no, and Open fails cleanly.
func TestNotAVMDK(t *testing.T) {
	root := testutil.RealFixtures(t)
	b := testutil.TarMember(t, filepath.Join(root, "openstack-glance/testserver.ova"), "testserver-disk1.vmdk")
	if string(b) != "ABCD" {
		t.Fatalf("member holds %q, want ABCD", b)
	}
	r := bytes.NewReader(b)
	if Detect(r, int64(len(b))) {
		t.Error("Detect(ABCD) = true")
	}
	_, err := Open(r, int64(len(b)), Options{Name: "testserver-disk1.vmdk"})
	if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), "testserver-disk1.vmdk") {
		t.Fatalf("Open(ABCD): %v, want ErrCorrupt naming the member", err)
	}
}
