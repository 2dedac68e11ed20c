package integration

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestOtherFormats writes the partitioned disk with qemu-img in every VHD,
// VHDX, QCOW2 and VDI variant appliances carry, and checks each raw view against
// qemu-img convert -O raw of the same image.
func TestOtherFormats(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	cases := []struct {
		name, format string
		args         []string
		member       string // the name in the archive
		reads        bool   // also random, boundary and parallel reads
	}{
		{"vhd dynamic", "vpc", nil, "disk1.vhd", true},
		{"vhd dynamic force_size", "vpc", []string{"-o", "force_size=on"}, "disk1.vhd", false},
		{"vhd fixed", "vpc", []string{"-o", "subformat=fixed"}, "disk1.vhd", false},
		{"vhd fixed force_size", "vpc", []string{"-o", "subformat=fixed,force_size=on"}, "disk1.vhd", false},
		{"vhdx dynamic", "vhdx", nil, "disk1.vhdx", true},
		{"vhdx fixed", "vhdx", []string{"-o", "subformat=fixed"}, "disk1.vhdx", false},
		{"vhdx 1M blocks", "vhdx", []string{"-o", "block_size=1M"}, "disk1.vhdx", false},
		{"qcow2 v2", "qcow2", []string{"-o", "compat=0.10"}, "disk1.qcow2", false},
		// oVirt exports qcow2 under the image UUID, with no extension.
		{"qcow2 zlib", "qcow2", []string{"-c", "-o", "compression_type=zlib"}, "5f3c9a2e-7b1d-4e8a-9c0f-2d6b8e1a4c7f", true},
		{"qcow2 zstd", "qcow2", []string{"-c", "-o", "compression_type=zstd"}, "disk1.qcow2", true},
		{"qcow2 extended l2", "qcow2", []string{"-o", "extended_l2=on,cluster_size=128k"}, "disk1.qcow2", false},
		{"qcow2 2M clusters", "qcow2", []string{"-o", "cluster_size=2M"}, "disk1.qcow2", false},
		{"vdi dynamic", "vdi", nil, "disk1.vdi", true},
		{"vdi static", "vdi", []string{"-o", "static=on"}, "disk1.vdi", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			testutil.QemuImg(t, append(append([]string{"convert", "-O", tc.format}, tc.args...), raw, img)...)
			m := mountArchive(t, packOVA(t, map[string]string{tc.member: img}))
			view := m.path("disks/" + tc.member + ".raw")
			oracle := testutil.RawOracle(t, t.TempDir(), img, tc.format)
			sameFile(t, view, oracle)
			if tc.reads {
				checkViewReads(t, view, oracle)
			}
		})
	}
}

// TestRealVHDAndQCOW2 mounts the real-world VHD and QCOW2 images; those
// whose parent or backing file is not in the package get no view, and the
// log names the parent.
func TestRealVHDAndQCOW2(t *testing.T) {
	fx := testutil.RealFixtures(t)
	for _, tc := range []struct {
		file, format, refused string
	}{
		{file: "log2timeline-dfvfs/ext2.vhd", format: "vpc"},
		{file: "log2timeline-dfvfs/ext2.qcow2", format: "qcow2"},
		{file: "kubevirt-containerized-data-importer/fs-overhead.qcow2", format: "qcow2"},
		{file: "log2timeline-dfvfs/image-differential.vhd", refused: "image.vhd|not in the package"},
		{file: "kubevirt-containerized-data-importer/cirros-snapshot1.qcow2", refused: "cirros.raw|not in the package"},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			name := filepath.Base(tc.file)
			m := mountArchive(t, packOVA(t, map[string]string{name: filepath.Join(fx, tc.file)}))
			view := m.path("disks/" + name + ".raw")
			if tc.refused != "" {
				if _, err := os.Stat(view); err == nil {
					t.Fatal("a view was made for a disk that needs a parent")
				}
				log := readFile(m.logFile)
				for _, want := range append(strings.Split(tc.refused, "|"), "no raw view") {
					if !strings.Contains(log, want) {
						t.Errorf("the log does not say %q:\n%s", want, log)
					}
				}
				if b, err := os.ReadFile(m.path(name)); err != nil || len(b) == 0 {
					t.Errorf("the member itself must stay readable: %v", err)
				}
				return
			}
			sameFile(t, view, testutil.RawOracle(t, t.TempDir(), filepath.Join(fx, tc.file), tc.format))
		})
	}
}

// TestHostileTables damages a QCOW2 L2 table and a VHD BAT, next to an
// intact disk: the damaged views fail with EIO, the log names the entry,
// and the intact disk keeps reading.
func TestHostileTables(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	dir := t.TempDir()
	qc := filepath.Join(dir, "q.qcow2")
	testutil.QemuImg(t, "convert", "-O", "qcow2", raw, qc)
	vh := filepath.Join(dir, "v.vhd")
	testutil.QemuImg(t, "convert", "-O", "vpc", raw, vh)

	q, _ := os.ReadFile(qc)
	l1 := binary.BigEndian.Uint64(q[40:])
	l2 := binary.BigEndian.Uint64(q[l1:]) & 0x00fffffffffffe00
	binary.BigEndian.PutUint64(q[l2:], 0x80_00_00_7f_ff_ff_00_00) // cluster 0 far past the end
	os.WriteFile(filepath.Join(dir, "bad.qcow2"), q, 0o644)

	v, _ := os.ReadFile(vh)
	batOff := binary.BigEndian.Uint64(v[512+16:])
	binary.BigEndian.PutUint32(v[batOff:], 0x7ffffff0) // block 0 far past the end
	os.WriteFile(filepath.Join(dir, "bad.vhd"), v, 0o644)

	m := mountArchive(t, packOVA(t, map[string]string{
		"bad.qcow2": filepath.Join(dir, "bad.qcow2"), "bad.vhd": filepath.Join(dir, "bad.vhd"), "good.qcow2": qc,
	}))
	for _, name := range []string{"bad.qcow2", "bad.vhd"} {
		f, err := os.Open(m.path("disks/" + name + ".raw"))
		if err != nil {
			continue // refused when opened: the log check below covers it
		}
		_, err = io.ReadFull(f, make([]byte, 4096))
		f.Close()
		if err == nil || !strings.Contains(err.Error(), "input/output error") {
			t.Errorf("%s: reading the damaged first block: %v, want EIO", name, err)
		}
	}
	log := readFile(m.logFile)
	for _, want := range []string{"bad.qcow2", "bad.vhd"} {
		if !strings.Contains(log, want) || !strings.Contains(log, "past the end") {
			t.Errorf("the log does not say what is wrong with %s", want)
		}
	}
	got, _ := os.ReadFile(m.path("disks/good.qcow2.raw"))
	want, _ := os.ReadFile(raw)
	if !bytes.Equal(got, want) {
		t.Error("the intact disk no longer reads correctly")
	}
}
