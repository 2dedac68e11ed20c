package integration

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// verifiedDisksOVA packs a streamOptimized VMDK and a zlib QCOW2 of the
// same partitioned disk with a manifest, and returns the archive and the
// disk (the oracle: qemu-img made both images from it).
func verifiedDisksOVA(t *testing.T) (archive, raw string) {
	t.Helper()
	dir := t.TempDir()
	raw = testutil.PartitionedDisk(t, 64<<20, 24<<20)
	vmdk := filepath.Join(dir, "disk1.vmdk")
	qcow := filepath.Join(dir, "disk2.qcow2")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	testutil.QemuImg(t, "convert", "-c", "-O", "qcow2", "-o", "compression_type=zlib", raw, qcow)
	vb, _ := os.ReadFile(vmdk)
	qb, _ := os.ReadFile(qcow)
	files := []testpkg.File{{Name: "disk1.vmdk", Data: vb}, {Name: "disk2.qcow2", Data: qb}}
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.vmdk", "disk2.qcow2")}
	mf := testpkg.Manifest("SHA256", append([]testpkg.File{desc}, files...)...).Named("app.mf")
	archive = filepath.Join(dir, "app.ova")
	testpkg.WriteOVA(t, archive, append([]testpkg.File{desc, mf}, files...)...)
	return archive, raw
}

// TestRandomReadsOfVerifiedViews reads the raw views of a verified VMDK
// and a verified zlib QCOW2 at random offsets and lengths, where the
// decoder may stop inflating where a read ends, and the same reads with
// --verify=off, where every grain is inflated whole and its checksum
// checked first: both must equal the disk qemu-img converted. The mount
// uses direct I/O, so that a small read reaches ovfmount as it was made
// rather than as the kernel's read-ahead would round it.
func TestRandomReadsOfVerifiedViews(t *testing.T) {
	archive, raw := verifiedDisksOVA(t)
	want, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name, status string
		args         []string
	}{
		{"verified", "verified", []string{"--cache-dir", "", "--direct-io"}},
		{"verify=off", "off", []string{"--verify=off", "--direct-io"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			m := mountArchive(t, archive, mode.args...)
			for _, view := range []string{"disks/disk1.vmdk.raw", "disks/disk2.qcow2.raw"} {
				path := m.path(view)
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if !waitFor(30*time.Second, func() bool { return xattr(t, path, "user.ovfmount.verify") == mode.status }) {
					t.Fatalf("%s: state %q, want %q", view, xattr(t, path, "user.ovfmount.verify"), mode.status)
				}
				rng := rand.New(rand.NewSource(7))
				// The ext4 partition's data sits in the first 26 MiB.
				for i := range 200 {
					n := 1 + rng.Intn(64<<10)
					if i%2 == 0 {
						n = 4096
					}
					off := rng.Int63n(26<<20 - int64(n))
					if got := pread(t, f, n, off); !bytes.Equal(got, want[off:off+int64(n)]) {
						t.Fatalf("%s: %d bytes at %d differ from qemu-img's disk at byte %d", view, n, off, off+int64(firstDiff(got, want[off:])))
					}
				}
			}
		})
	}
}

// damageGrainChecksum flips a bit of the Adler-32 that ends the first
// grain record of a streamOptimized VMDK holding data at or after minLBA,
// so that the grain inflates to its right bytes but fails its checksum.
// It returns the grain's first sector.
func damageGrainChecksum(t *testing.T, img []byte, minLBA uint64) uint64 {
	t.Helper()
	const sector = 512
	overhead := binary.LittleEndian.Uint64(img[0x40:]) // overHead: sectors before the first record
	for pos := overhead * sector; pos+sector <= uint64(len(img)); {
		lba := binary.LittleEndian.Uint64(img[pos:])
		size := uint64(binary.LittleEndian.Uint32(img[pos+8:]))
		if size == 0 { // a metadata marker: lba counts the sectors after it
			pos += (1 + lba) * sector
			continue
		}
		if lba >= minLBA {
			img[pos+12+size-1] ^= 0x01
			return lba
		}
		pos += (12 + size + sector - 1) / sector * sector
	}
	t.Fatal("no grain record found")
	return 0
}

// TestDamagedGrainInVerifiedMember damages one grain's checksum before
// the manifest is made, so the member verifies, as a producer's bug
// would leave it. A read of the grain's head is served from a verified
// member without waiting for the checksum; once the grain's tail is
// checked the read fails with EIO, the disk is marked damaged with a log
// line naming it, the grain and its offset, and later reads fail too. The
// same disk with --verify=off fails the first read of that grain.
func TestDamagedGrainInVerifiedMember(t *testing.T) {
	dir := t.TempDir()
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	vmdk := filepath.Join(dir, "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	img, _ := os.ReadFile(vmdk)
	want, _ := os.ReadFile(raw)
	lba := damageGrainChecksum(t, img, 4096) // past the partition table and the ext4 superblock
	grain := int64(lba) * 512
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.vmdk")}
	disk := testpkg.File{Name: "disk1.vmdk", Data: img}
	mf := testpkg.Manifest("SHA256", desc, disk).Named("app.mf")
	archive := filepath.Join(dir, "app.ova")
	testpkg.WriteOVA(t, archive, desc, mf, disk)

	t.Run("verified", func(t *testing.T) {
		m := mountArchive(t, archive, "--cache-dir", "", "--direct-io")
		path := m.path("disks/disk1.vmdk.raw")
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if !waitFor(30*time.Second, func() bool { return xattr(t, path, "user.ovfmount.verify") == "verified" }) {
			t.Fatalf("state %q, want verified", xattr(t, path, "user.ovfmount.verify"))
		}
		if got := pread(t, f, 4096, grain); !bytes.Equal(got, want[grain:grain+4096]) {
			t.Fatal("the head of the grain differs from the disk")
		}
		buf := make([]byte, 4096)
		tail := grain + 60<<10
		if _, err := f.ReadAt(buf, tail); !errors.Is(err, syscall.EIO) {
			t.Fatalf("the grain's tail: %v, want EIO", err)
		}
		if _, err := f.ReadAt(buf, 1<<20); !errors.Is(err, syscall.EIO) {
			t.Errorf("another grain after the damage was found: %v, want EIO", err)
		}
		if got := xattr(t, path, "user.ovfmount.verify"); got != "damaged" {
			t.Errorf("state after the damage: %q, want damaged", got)
		}
		log := readFile(m.logFile)
		if i := strings.Index(log, "disk damaged: every read"); i < 0 {
			t.Errorf("no line says the disk is damaged:\n%s", log)
		} else {
			log = log[strings.LastIndex(log[:i], "\n")+1:]
			log = log[:strings.Index(log, "\n")]
		}
		for _, s := range []string{"disk1.vmdk", "grain " + itoa(int(grain/(64<<10))), "offset"} {
			if !strings.Contains(log, s) {
				t.Errorf("the log does not name %q:\n%s", s, log)
			}
		}
	})
	t.Run("verify=off", func(t *testing.T) {
		m := mountArchive(t, archive, "--verify=off", "--direct-io")
		f, err := os.Open(m.path("disks/disk1.vmdk.raw"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 4096)
		if _, err := f.ReadAt(buf, grain); !errors.Is(err, syscall.EIO) {
			t.Fatalf("the head of an unchecked damaged grain: %v, want EIO", err)
		}
	})
}
