package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// gzipOVA compresses a disk image with gzip(1) and packs it as
// disk1.vmdk.gz with ovf:compression="gzip" (split into chunks of the
// compressed file when chunk > 0, as DSP0243 orders them), with a SHA256
// manifest of the stored bytes. It returns the OVA and what zcat makes of
// the stored bytes, the oracle for the decompressed file.
func gzipOVA(t *testing.T, img string, chunk int, damage bool) (string, []byte) {
	t.Helper()
	gz, err := exec.Command(testutil.RequireTool(t, "gzip"), "-c", "-6", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	zcat := exec.Command(testutil.RequireTool(t, "zcat"))
	zcat.Stdin = bytes.NewReader(gz)
	decoded, err := zcat.Output()
	if err != nil {
		t.Fatal(err)
	}
	chunkAttr := ""
	members := map[string][]byte{"disk1.vmdk.gz": gz}
	if chunk > 0 {
		chunkAttr = fmt.Sprintf(` ovf:chunkSize="%d"`, chunk)
		members = map[string][]byte{}
		for i, off := 0, 0; off < len(gz); i, off = i+1, off+chunk {
			members[fmt.Sprintf("disk1.vmdk.gz.%09d", i)] = gz[off:min(off+chunk, len(gz))]
		}
	}
	desc := fmt.Sprintf(`<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">`+
		`<References><File ovf:id="f1" ovf:href="disk1.vmdk.gz" ovf:size="%d" ovf:compression="gzip"%s/></References>`+
		`<DiskSection><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="67108864" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#sparse"/></DiskSection></Envelope>`,
		len(gz), chunkAttr)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	names := []string{"app.ovf", "app.mf"}
	mf := fmt.Sprintf("SHA256(app.ovf)= %s\n", sum([]byte(desc)))
	for name := range members {
		names = append(names, name)
	}
	sort.Strings(names[2:])
	for _, name := range names[2:] {
		mf += fmt.Sprintf("SHA256(%s)= %s\n", name, sum(members[name]))
	}
	if damage {
		gz[len(gz)/2] ^= 0x10 // after the manifest: the stored bytes no longer match it
	}
	members["app.ovf"], members["app.mf"] = []byte(desc), []byte(mf)
	out := filepath.Join(t.TempDir(), "gzip.ova")
	f, _ := os.Create(out)
	tw := tar.NewWriter(f)
	for _, name := range names {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(members[name]))})
		tw.Write(members[name])
	}
	tw.Close()
	f.Close()
	return out, decoded
}

// TestGzipFile: the decompressed file appears under the href without .gz,
// readable at any offset, its disk has a raw view, and a second mount
// loads the seek index the first one saved.
func TestGzipFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk int
	}{{"one member", 0}, {"chunked", 1 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			raw := testutil.PartitionedDisk(t, 16<<20, 6<<20)
			img := filepath.Join(t.TempDir(), "disk1.vmdk")
			testutil.QemuImg(t, "convert", "-O", "vmdk", raw, img) // monolithicSparse: uncompressed grains
			archive, decoded := gzipOVA(t, img, tc.chunk, false)
			if n := len(tarMembers(t, archive)); tc.chunk > 0 && n < 5 {
				t.Fatalf("%d members: the gzip file is not split into several chunks", n)
			}
			cache := t.TempDir()
			m := mountArchive(t, archive, "--cache-dir", cache)
			for name := range tarMembers(t, archive) { // the stored members, as they are
				if got, err := os.ReadFile(m.path(name)); err != nil || !bytes.Equal(got, tarExtract(t, archive, name)) {
					t.Errorf("%s differs from tar -xO: %v", name, err)
				}
			}
			if got, err := os.ReadFile(m.path("disk1.vmdk")); err != nil || !bytes.Equal(got, decoded) {
				t.Fatalf("disk1.vmdk: %d bytes (%v), zcat gives %d", len(got), err, len(decoded))
			}
			checkRandomReads(t, m, map[string][]byte{"disk1.vmdk": decoded}, 60)
			view := m.path("disks/disk1.vmdk.raw")
			sameFile(t, view, testutil.RawOracle(t, t.TempDir(), img, "vmdk"))
			checkViewReads(t, view, raw)
			if !strings.Contains(readFile(m.logFile), "gzip index built") {
				t.Errorf("the first mount did not build an index:\n%s", tail(readFile(m.logFile), 2000))
			}
			m.unmount(t)

			m = mountArchive(t, archive, "--cache-dir", cache)
			if log := readFile(m.logFile); !strings.Contains(log, "gzip index loaded") {
				t.Errorf("the second mount did not load the saved index:\n%s", tail(log, 2000))
			}
			checkRandomReads(t, m, map[string][]byte{"disk1.vmdk": decoded}, 20)

			// info reads the compressed disk's header through the saved
			// index, and without one says the format is read at mount.
			for _, c := range []struct{ dir, want string }{{cache, `"format": "vmdk monolithicSparse`}, {t.TempDir(), `"format": "gzip (`}} {
				code, out := runOvfmount(t, "info", "--json", "--cache-dir", c.dir, archive)
				if code != 0 || !strings.Contains(out, c.want) {
					t.Errorf("info with cache %s: exit %d, want %s in:\n%s", c.dir, code, c.want, out)
				}
			}
		})
	}
}

// TestGzipDamagedStrict: on a strict mount, a gzip file whose stored bytes
// fail the manifest is not decompressed at all; its stored member fails
// with EIO, and the rest of the package is served.
func TestGzipDamagedStrict(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 16<<20, 6<<20)
	img := filepath.Join(t.TempDir(), "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", raw, img)
	archive, _ := gzipOVA(t, img, 0, true)
	m := mountArchive(t, archive, "--verify=strict", "--cache-dir", t.TempDir())
	if _, err := os.Stat(m.path("disk1.vmdk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the decompressed file of a damaged gzip file: %v", err)
	}
	if _, err := os.Stat(m.path("disks/disk1.vmdk.raw")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a raw view of a damaged gzip file: %v", err)
	}
	if _, err := os.ReadFile(m.path("disk1.vmdk.gz")); !errors.Is(err, syscall.EIO) {
		t.Errorf("reading the damaged stored file: %v, want EIO", err)
	}
	if _, err := os.ReadFile(m.path("app.ovf")); err != nil {
		t.Errorf("the descriptor beside it: %v", err)
	}
	if log := readFile(m.logFile); !strings.Contains(log, "cannot be decompressed") {
		t.Errorf("the log does not say why:\n%s", tail(log, 2000))
	}
}
