package qcow2

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// The disk every generated image is converted from: 64 MiB, an MBR and an
// ext4 partition holding 24 MiB of real binaries (shared with other
// packages' tests).
const (
	diskSize    = 64 << 20
	diskContent = 24 << 20
)

// qemuImage converts src with qemu-img into a qcow2 file in dir. args are
// extra convert flags, such as -c and -o options.
func qemuImage(t testing.TB, dir, src, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name+".qcow2")
	cmd := append([]string{"convert", "-f", "raw", "-O", "qcow2"}, args...)
	testutil.QemuImg(t, append(cmd, src, out)...)
	return out
}

type variant struct {
	name   string
	args   []string
	format string
	unit   int64           // cluster size
	kinds  []blockmap.Kind // kinds the mapping must contain
}

var variants = []variant{
	{"v2", []string{"-o", "compat=0.10"}, "qcow2 v2", 64 << 10, []blockmap.Kind{blockmap.Stored, blockmap.Hole}},
	{"v3", []string{"-o", "compat=1.1"}, "qcow2 v3 (zlib)", 64 << 10, []blockmap.Kind{blockmap.Stored, blockmap.Hole}},
	{"v3-zlib", []string{"-c", "-o", "compression_type=zlib"}, "qcow2 v3 (zlib)", 64 << 10, []blockmap.Kind{blockmap.Compressed, blockmap.Hole}},
	{"v3-zstd", []string{"-c", "-o", "compression_type=zstd"}, "qcow2 v3 (zstd)", 64 << 10, []blockmap.Kind{blockmap.Compressed, blockmap.Hole}},
	{"extl2", []string{"-o", "extended_l2=on,cluster_size=128k"}, "qcow2 v3 (zlib, extended L2)", 128 << 10, []blockmap.Kind{blockmap.Stored, blockmap.Hole}},
	{"extl2-zlib", []string{"-c", "-o", "extended_l2=on,cluster_size=128k"}, "qcow2 v3 (zlib, extended L2)", 128 << 10, []blockmap.Kind{blockmap.Compressed, blockmap.Hole}},
	{"2m", []string{"-o", "cluster_size=2M"}, "qcow2 v3 (zlib)", 2 << 20, []blockmap.Kind{blockmap.Stored, blockmap.Hole}},
	{"2m-zlib", []string{"-c", "-o", "cluster_size=2M"}, "qcow2 v3 (zlib)", 2 << 20, []blockmap.Kind{blockmap.Compressed, blockmap.Hole}},
	{"512", []string{"-o", "cluster_size=512"}, "qcow2 v3 (zlib)", 512, []blockmap.Kind{blockmap.Stored, blockmap.Hole}},
}

// TestQemuImages decodes images written by qemu-img from the partitioned
// disk and compares every byte with qemu-img convert -O raw.
func TestQemuImages(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	disk := testutil.PartitionedDisk(t, diskSize, diskContent)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := qemuImage(t, dir, disk, v.name, v.args...)
			checkImage(t, dir, path, v)
		})
	}
}

// checkImage runs every comparison on one image and returns qemu-img
// map's extents.
func checkImage(t *testing.T, dir, path string, v variant) []qemuExtent {
	t.Helper()
	img := openImage(t, path)
	o := openOracle(t, dir, path)
	if v.format != "" && img.Format() != v.format {
		t.Errorf("Format() = %q, want %q", img.Format(), v.format)
	}
	if w := img.Warnings(); len(w) != 0 {
		t.Errorf("unexpected warnings: %q", w)
	}
	// blockmap.ReadAt has no cache, so every read decodes whole clusters
	// (slowly under -race): fewer reads for large clusters keep the test
	// quick.
	reads := int(min(32, max(4, (2<<20)/v.unit)))
	if raceEnabled {
		reads = 4
	}
	maxLen := min(128<<10, 32*v.unit)
	n := compareWhole(t, img, o)
	compareRandom(t, img, o, 1, reads, maxLen)
	compareBoundaries(t, img, o, v.unit, reads)
	compareConcurrent(t, img, o, 4, max(2, reads/4), maxLen)
	runs, bytes := walkRuns(t, img)
	for _, k := range v.kinds {
		if runs[k] == 0 {
			t.Errorf("no %v run in the mapping (runs %v)", k, runs)
		}
	}
	ext := compareQemuMap(t, img, path)
	st, _ := os.Stat(path)
	t.Logf("%s, %s: %d bytes compared (file %d bytes); runs %v; bytes %v; %d qemu-img map extents",
		v.name, v.format, n, st.Size(), runs, bytes, len(ext))
	return ext
}

// TestPartialLastCluster converts a disk whose size is not a multiple of
// the cluster size, so the last cluster is only partly virtual.
func TestPartialLastCluster(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	disk := testutil.PartitionedDisk(t, diskSize, diskContent)
	dir := t.TempDir()
	// 5 MiB + 1.5 KiB from the partition: a hole, then files.
	raw := filepath.Join(dir, "odd.raw")
	copyRange(t, disk, raw, 8<<20, 5<<20+1536)
	for _, v := range []variant{
		{"odd-v3", []string{"-o", "compat=1.1"}, "qcow2 v3 (zlib)", 64 << 10, []blockmap.Kind{blockmap.Stored}},
		{"odd-zlib", []string{"-c"}, "qcow2 v3 (zlib)", 64 << 10, []blockmap.Kind{blockmap.Compressed}},
		{"odd-zstd", []string{"-c", "-o", "compression_type=zstd"}, "qcow2 v3 (zstd)", 64 << 10, []blockmap.Kind{blockmap.Compressed}},
		{"odd-extl2-zstd", []string{"-c", "-o", "extended_l2=on,cluster_size=128k,compression_type=zstd"}, "qcow2 v3 (zstd, extended L2)", 128 << 10, []blockmap.Kind{blockmap.Compressed}},
		{"odd-extl2", []string{"-o", "extended_l2=on,cluster_size=64k"}, "qcow2 v3 (zlib, extended L2)", 64 << 10, []blockmap.Kind{blockmap.Stored}},
		{"odd-2m-zstd", []string{"-c", "-o", "cluster_size=2M,compression_type=zstd"}, "qcow2 v3 (zstd)", 2 << 20, []blockmap.Kind{blockmap.Compressed}},
		// 512-byte clusters leave a single bit for the sector count of a
		// compressed cluster.
		{"odd-512-zstd", []string{"-c", "-o", "cluster_size=512,compression_type=zstd"}, "qcow2 v3 (zstd)", 512, []blockmap.Kind{blockmap.Compressed}},
	} {
		t.Run(v.name, func(t *testing.T) {
			path := qemuImage(t, dir, raw, v.name, v.args...)
			img := openImage(t, path)
			if v.unit > 512 && img.Size()%v.unit == 0 {
				t.Fatalf("virtual size %d is a multiple of the cluster size", img.Size())
			}
			r, err := img.Map(img.Size() - 1)
			if err != nil {
				t.Fatal(err)
			}
			if r.End() != img.Size() {
				t.Fatalf("last run %+v ends past the disk (%d)", r, img.Size())
			}
			checkImage(t, dir, path, v)
		})
	}
}

func copyRange(t testing.TB, src, dst string, off, n int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	buf := make([]byte, n)
	if _, err := in.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestZeroClusters makes explicit zero clusters with qemu-io write -z over
// a converted disk: preallocated zero clusters (over allocated data, no
// unmap), plain zero clusters (-u, or over unallocated space) and, with
// extended L2 entries, zero subclusters.
func TestZeroClusters(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "qemu-io")
	disk := testutil.PartitionedDisk(t, diskSize, diskContent)
	// The files sit at 9-34 MiB, so writes there zero allocated clusters.
	cases := []struct {
		v         variant
		writes    []string
		zeroAlloc bool // expect preallocated zero clusters (zero with an offset)
	}{
		{variant{"zero-v3", []string{"-o", "compat=1.1"}, "qcow2 v3 (zlib)", 64 << 10, []blockmap.Kind{blockmap.Stored, blockmap.Zero, blockmap.Hole}},
			[]string{"write -z 2M 3M", "write -z 10M 1M", "write -z -u 12M 512k", "write -z 60M 2M", "write -z 14340k 8k", "write -P 0x5a 61M 4k"}, true},
		{variant{"zero-zstd", []string{"-c", "-o", "compression_type=zstd"}, "qcow2 v3 (zstd)", 64 << 10, []blockmap.Kind{blockmap.Compressed, blockmap.Zero, blockmap.Hole}},
			[]string{"write -z 2M 3M", "write -z 10M 1M", "write -z -u 12M 512k", "write -z 61M 1M"}, false},
		{variant{"zero-extl2", []string{"-o", "extended_l2=on,cluster_size=128k"}, "qcow2 v3 (zlib, extended L2)", 4 << 10, []blockmap.Kind{blockmap.Stored, blockmap.Zero, blockmap.Hole}},
			[]string{"write -z 2M 4k", "write -z 2060k 12k", "write -z 10M 4k", "write -z 10252k 40k", "write -z -u 12M 256k", "write -z 40M 8k", "write -P 0xc3 41M 4k"}, true},
	}
	for _, c := range cases {
		t.Run(c.v.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := qemuImage(t, dir, disk, c.v.name, c.v.args...)
			args := []string{"-f", "qcow2"}
			for _, w := range c.writes {
				args = append(args, "-c", w)
			}
			runTool(t, "qemu-io", append(args, path)...)
			ext := checkImage(t, dir, path, c.v)
			var plain, alloc int
			for _, e := range ext {
				switch {
				case e.Zero && e.Data:
					t.Errorf("extent %+v is both zero and data", e)
				case e.Zero && e.Offset != nil:
					alloc++
				case e.Zero:
					plain++
				}
			}
			if c.zeroAlloc && alloc == 0 {
				t.Errorf("qemu-img map shows no preallocated zero clusters")
			}
			t.Logf("%d zero extents with an offset, %d without", alloc, plain)
		})
	}
}

func runTool(t testing.TB, name string, args ...string) {
	t.Helper()
	testutil.RequireTool(t, name)
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
