package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// chunkedOVA splits a disk image into chunks of size chunk, named
// disk1.vmdk.000000000, ..., lists each in a SHA256 manifest, and writes
// the OVA with a descriptor saying ovf:chunkSize.
func chunkedOVA(t *testing.T, img string, chunk int) (string, []byte) {
	t.Helper()
	disk, _ := os.ReadFile(img)
	var chunks [][]byte
	for off := 0; off < len(disk); off += chunk {
		chunks = append(chunks, disk[off:min(off+chunk, len(disk))])
	}
	desc := fmt.Sprintf(`<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">`+
		`<References><File ovf:id="f1" ovf:href="disk1.vmdk" ovf:size="%d" ovf:chunkSize="%d"/></References>`+
		`<DiskSection><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="67108864"/></DiskSection></Envelope>`, len(disk), chunk)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	mf := fmt.Sprintf("SHA256(app.ovf)= %s\n", sum([]byte(desc)))
	for i, c := range chunks {
		mf += fmt.Sprintf("SHA256(disk1.vmdk.%09d)= %s\n", i, sum(c))
	}
	out := filepath.Join(t.TempDir(), "chunked.ova")
	f, _ := os.Create(out)
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	add("app.ovf", []byte(desc))
	add("app.mf", []byte(mf))
	for i, c := range chunks {
		add(fmt.Sprintf("disk1.vmdk.%09d", i), c)
	}
	tw.Close()
	f.Close()
	return out, disk
}

func TestChunkedFile(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	img := filepath.Join(t.TempDir(), "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, img)
	archive, disk := chunkedOVA(t, img, 3<<20)
	m := mountArchive(t, archive)

	// The logical file is the chunks joined, at random offsets too.
	logical := m.path("disk1.vmdk")
	got, err := os.ReadFile(logical)
	if err != nil || !bytes.Equal(got, disk) {
		t.Fatalf("the joined file: %d bytes, %v", len(got), err)
	}
	checkRandomReads(t, m, map[string][]byte{"disk1.vmdk": disk}, 100)
	// Its raw view decodes across the chunks.
	view := m.path("disks/disk1.vmdk.raw")
	sameFile(t, view, testutil.RawOracle(t, t.TempDir(), img, "vmdk"))
	checkViewReads(t, view, raw)
	// No view of the chunks themselves.
	if views := rawViews(t, m); len(views) != 1 {
		t.Errorf("disks/ holds raw views %v", views)
	}
}

// TestChunkedLazyVerification: each chunk is verified on its own, when a
// read first needs it, not by a pass over the whole file.
func TestChunkedLazyVerification(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	img := filepath.Join(t.TempDir(), "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, img)
	archive, disk := chunkedOVA(t, img, 2<<20)
	m := mountArchive(t, archive, "--verify=strict")
	f, err := os.Open(m.path("disk1.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// One read inside chunk 1 ([2 MiB, 4 MiB)) verifies that chunk only.
	b := pread(t, f, 4096, 2<<20+4096)
	if !bytes.Equal(b, disk[2<<20+4096:2<<20+8192]) {
		t.Fatal("a strict read of chunk 1 returned wrong bytes")
	}
	time.Sleep(200 * time.Millisecond)
	states := map[string]string{}
	for i := range 4 {
		name := fmt.Sprintf("disk1.vmdk.%09d", i)
		states[name] = xattr(t, m.path(name), "user.ovfmount.verify")
	}
	if states["disk1.vmdk.000000001"] != "verified" || states["disk1.vmdk.000000000"] != "pending" || states["disk1.vmdk.000000002"] != "pending" {
		t.Errorf("after reading chunk 1 only: %v", states)
	}
	if st := xattr(t, m.path("disk1.vmdk"), "user.ovfmount.verify"); st != "pending" {
		t.Errorf("the logical file shows %q while chunks are pending", st)
	}
	if log := readFile(m.logFile); strings.Contains(log, "disk1.vmdk.000000000\",\"algorithm") {
		t.Error("chunk 0 was verified without being read")
	}
}
