package xfs

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestInfo compares Info with what xfs_db reports, before and after the
// UUID is changed (which sets the meta_uuid feature on v5: the metadata
// keeps the old UUID, the superblock shows the new one), and checks Probe.
func TestInfo(t *testing.T) {
	t.Parallel()
	db := testutil.RequireTool(t, "xfs_db")
	for _, crc := range []string{"crc=1", "crc=0"} {
		img := mkfs(t, 64, "-m", crc, "-L", "guest-label")
		q := func(args ...string) string {
			out, err := exec.Command(db, append(args, img)...).CombinedOutput()
			if err != nil {
				t.Fatalf("xfs_db %q: %v: %s", args, err, out)
			}
			return string(out)
		}
		check := func() {
			fsys := openImage(t, img)
			info := fsys.Info()
			label := strings.Trim(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(q("-r", "-c", "label")), "label =")), `"`)
			uuid := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(q("-r", "-c", "uuid")), "UUID ="))
			blocks := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(q("-r", "-c", "sb 0", "-c", "print dblocks")), "dblocks ="))
			if info.Type != "xfs" || info.Label != label || info.UUID != uuid || info.BlockSize != 4096 ||
				strconv.FormatInt(info.Size/4096, 10) != blocks {
				t.Errorf("%s: info %+v; xfs_db: label %q uuid %q dblocks %s", crc, info, label, uuid, blocks)
			}
			guestfstest.Walk(t, fsys, 100)
		}
		check()
		q("-x", "-c", "uuid 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
		check()
		if crc == "crc=1" {
			inc, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(q("-r", "-c", "sb 0", "-c", "print features_incompat")), "features_incompat = 0x")), 16, 32)
			if err != nil || inc&incMetaUUID == 0 {
				t.Errorf("the UUID change did not set meta_uuid: %#x, %v", inc, err)
			}
		}
		if !strings.Contains(openImage(t, img).Info().UUID, "0f1e2d3c") {
			t.Errorf("%s: the new UUID is not shown", crc)
		}
		fh, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		if !Probe(fh, st.Size()) {
			t.Errorf("%s: Probe says no", crc)
		}
		fh.Close()
	}
	if Probe(bytes.NewReader(make([]byte, 4096)), 4096) {
		t.Error("Probe says yes to zeros")
	}
}
