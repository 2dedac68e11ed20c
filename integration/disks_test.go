package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/internal/sample"
	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/internal/vmdkwriter"
)

// packOVA writes an OVA holding the given host files under member names,
// after a descriptor naming the disks in its DiskSection.
func packOVA(t testing.TB, members map[string]string, diskNames ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "app.ova")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	var refs, disks strings.Builder
	for i, d := range diskNames {
		fmt.Fprintf(&refs, `<File ovf:id="f%d" ovf:href="%s"/>`, i, d)
		fmt.Fprintf(&disks, `<Disk ovf:diskId="d%d" ovf:fileRef="f%d" ovf:capacity="1"/>`, i, i)
	}
	desc := fmt.Sprintf(`<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References>%s</References><DiskSection>%s</DiskSection></Envelope>`, refs.String(), disks.String())
	tw.WriteHeader(&tar.Header{Name: "app.ovf", Mode: 0o644, Size: int64(len(desc))})
	tw.Write([]byte(desc))
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		src, err := os.Open(members[name])
		if err != nil {
			t.Fatal(err)
		}
		st, _ := src.Stat()
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime()})
		io.Copy(tw, src)
		src.Close()
	}
	tw.Close()
	f.Close()
	return out
}

// rawViews lists the raw views under disks/ (leaving out the partitions
// and volumes found in them).
func rawViews(t testing.TB, m *mountResult) []string {
	t.Helper()
	ents, err := os.ReadDir(m.path("disks"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".raw") {
			out = append(out, e.Name())
		}
	}
	return out
}

// sameFile compares two files byte for byte, as cmp(1) would, and reports
// the first difference. Ranges that both files report as holes
// (SEEK_HOLE) are zeros on both sides and are skipped, as qemu-img compare
// does, so an 8 GiB mostly empty disk costs only its data.
func sameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sa, _ := a.Stat()
	sb, _ := b.Stat()
	if sa.Size() != sb.Size() {
		t.Fatalf("%s is %d bytes, %s is %d", got, sa.Size(), want, sb.Size())
	}
	size := sa.Size()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < size; {
		next := min(nextData(a, off, size), nextData(b, off, size))
		if next > off { // a hole in both: spot-check that it reads as zeros
			for _, at := range []int64{off, max(off, next-4096)} {
				n := int(min(4096, next-at))
				na, _ := a.ReadAt(ba[:n], at)
				if na != n || !bytes.Equal(ba[:n], make([]byte, n)) {
					t.Fatalf("%s: the hole at %d does not read as zeros", got, at)
				}
			}
			off = next
			continue
		}
		n := int(min(int64(len(ba)), size-off))
		na, _ := a.ReadAt(ba[:n], off)
		nb, _ := b.ReadAt(bb[:n], off)
		if na != n || nb != n || !bytes.Equal(ba[:n], bb[:n]) {
			t.Fatalf("%s differs from %s at byte %d", got, want, off+int64(firstDiff(ba[:na], bb[:nb])))
		}
		off += int64(n)
	}
}

// nextData is the first offset at or after off that may hold data.
func nextData(f *os.File, off, size int64) int64 {
	d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if err == unix.ENXIO {
		return size
	}
	if err != nil {
		return off
	}
	return d
}

// TestVMDKSubformats writes the partitioned disk in every VMDK subformat
// qemu-img knows, packs each with its extent files into an OVA, and checks
// that the raw view equals qemu-img convert -O raw.
func TestVMDKSubformats(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	for _, sub := range []string{"streamOptimized", "monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "disk1.vmdk")
			testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat="+sub, raw, img)
			members := map[string]string{}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				members[e.Name()] = filepath.Join(dir, e.Name())
			}
			m := mountArchive(t, packOVA(t, members, "disk1.vmdk"))
			if views := rawViews(t, m); len(views) != 1 || views[0] != "disk1.vmdk.raw" {
				t.Fatalf("disks/ holds raw views %v, want just disk1.vmdk.raw (extent files get no view)", views)
			}
			sameFile(t, m.path("disks/disk1.vmdk.raw"), testutil.RawOracle(t, t.TempDir(), img, "vmdk"))
		})
	}
}

// TestGDAtEndStream checks the ovftool layout (footer, markers, GD at the
// end), written by the repository's writer since qemu-img never writes it.
func TestGDAtEndStream(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	img := filepath.Join(t.TempDir(), "disk1.vmdk")
	in, _ := os.Open(raw)
	out, _ := os.Create(img)
	if err := vmdkwriter.Write(out, in, 64<<20); err != nil {
		t.Fatal(err)
	}
	in.Close()
	out.Close()
	m := mountArchive(t, packOVA(t, map[string]string{"disk1.vmdk": img}, "disk1.vmdk"))
	view := m.path("disks/disk1.vmdk.raw")
	sameFile(t, view, raw)
	sameFile(t, view, testutil.RawOracle(t, t.TempDir(), img, "vmdk"))
	if !strings.Contains(readFile(m.logFile), "GD at end") {
		t.Error("the log does not say the grain directory was at the end")
	}
	checkViewReads(t, view, raw)
}

// checkViewReads reads a raw view at random offsets, across grain
// boundaries, at the last bytes, and from many goroutines at once.
func checkViewReads(t *testing.T, view, oracle string) {
	t.Helper()
	want, err := os.ReadFile(oracle)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(view)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int64(len(want))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			for i := range 60 {
				off := rng.Int63n(size)
				n := 1 + rng.Intn(256<<10)
				switch i % 4 {
				case 0: // straddle a 64 KiB grain boundary
					off = max(0, (off/65536+1)*65536-int64(rng.Intn(512))-1)
				case 1: // the last bytes
					off = max(0, size-int64(rng.Intn(70000))-1)
				}
				buf := make([]byte, n)
				k, _ := f.ReadAt(buf, off)
				end := min(off+int64(n), size)
				if int64(k) != end-off || !bytes.Equal(buf[:k], want[off:end]) {
					t.Errorf("ReadAt(%d bytes at %d) = %d bytes that differ", n, off, k)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestRealVMDKs mounts each real-world VMDK (with its extent files) and
// compares the view with qemu-img; the ones qemu-img refuses must get no
// view, and the log must say why.
func TestRealVMDKs(t *testing.T) {
	fx := testutil.RealFixtures(t)
	for _, tc := range []struct {
		disk    string
		extents []string
		refused string // a substring of the log line when no view is made
	}{
		{disk: "strozfriedberg-vmdk-rs/streamOptimized.vmdk"},
		{disk: "strozfriedberg-vmdk-rs/monolithicSparse.vmdk"},
		{disk: "strozfriedberg-vmdk-rs/twoGbMaxExtentSparse.vmdk", extents: []string{"strozfriedberg-vmdk-rs/twoGbMaxExtentSparse-s001.vmdk"}},
		{disk: "strozfriedberg-vmdk-rs/vmfs_thick.vmdk", extents: []string{"strozfriedberg-vmdk-rs/vmfs_thick-flat.vmdk"}},
		{disk: "glennmatthews-cot/input.vmdk"},
		{disk: "glennmatthews-cot/blank.vmdk"},
		{disk: "glennmatthews-cot/ubuntu.2.0-disk1.vmdk"},
		{disk: "log2timeline-dfvfs/ext2.vmdk"},
		{disk: "kubevirt-containerized-data-importer/invalid-qcow-large-memory.img", refused: "grain size"},
		{disk: "strozfriedberg-vmdk-rs/twoGbMaxExtentSparse-s001.vmdk", refused: "open its descriptor instead"},
	} {
		t.Run(filepath.Base(tc.disk), func(t *testing.T) {
			members := map[string]string{filepath.Base(tc.disk): filepath.Join(fx, tc.disk)}
			for _, e := range tc.extents {
				members[filepath.Base(e)] = filepath.Join(fx, e)
			}
			m := mountArchive(t, packOVA(t, members))
			view := m.path("disks/" + filepath.Base(tc.disk) + ".raw")
			if tc.refused != "" {
				if _, err := os.Stat(view); err == nil {
					t.Fatal("a view was made for a disk that cannot be decoded")
				}
				if log := readFile(m.logFile); !strings.Contains(log, "no raw view") || !strings.Contains(log, tc.refused) {
					t.Errorf("the log does not say why: want %q in\n%s", tc.refused, log)
				}
				return
			}
			// Compare through the sparse-aware copy qemu-img makes, so the
			// 8 GiB and 1 GiB disks cost only their data.
			oracle := testutil.RawOracle(t, t.TempDir(), filepath.Join(fx, tc.disk), "vmdk")
			sameFile(t, view, oracle)
		})
	}
}

// TestHostileDisks mounts damaged and hostile VMDKs next to a good disk:
// each damaged one fails its reads with EIO (or gets no view), the log
// names the grain, and the good disk keeps reading.
func TestHostileDisks(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, good)
	base, _ := os.ReadFile(good)
	gd := int64(binary.LittleEndian.Uint64(base[56:])) * 512
	gt0 := int64(binary.LittleEndian.Uint32(base[gd:])) * 512
	firstGrain := int64(0)
	for i := int64(0); i < 512; i++ {
		if e := binary.LittleEndian.Uint32(base[gt0+4*i:]); e > 1 {
			firstGrain = int64(e) * 512
			break
		}
	}
	mutate := func(name string, f func(b []byte) []byte) string {
		b := f(bytes.Clone(base))
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	members := map[string]string{
		"good.vmdk": good,
		// A grain whose compressed bytes are damaged.
		"badgrain.vmdk": mutate("badgrain.vmdk", func(b []byte) []byte {
			for i := firstGrain + 12 + 20; i < firstGrain+12+60; i++ {
				b[i] ^= 0x5a
			}
			return b
		}),
		// A grain table entry pointing past the end of the member.
		"outofrange.vmdk": mutate("outofrange.vmdk", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[gt0:], 0x7fffffff)
			return b
		}),
		// A grain whose marker claims another LBA.
		"badlba.vmdk": mutate("badlba.vmdk", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[firstGrain:], 123456)
			return b
		}),
		// Truncated in the middle of the grains.
		"truncated.vmdk": mutate("truncated.vmdk", func(b []byte) []byte { return b[:firstGrain+100] }),
		// A capacity of 2^60 sectors.
		"huge.vmdk": mutate("huge.vmdk", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[12:], 1<<60)
			return b
		}),
		// A decompression bomb: one grain that inflates to far more than a grain.
		"bomb.vmdk": mutate("bomb.vmdk", func(b []byte) []byte { return bombGrain(t, b, firstGrain) }),
	}
	m := mountArchive(t, packOVA(t, members))
	for _, name := range []string{"badgrain", "outofrange", "badlba", "truncated", "bomb"} {
		view := m.path("disks/" + name + ".vmdk.raw")
		f, err := os.Open(view)
		if err != nil {
			continue // refused at open: checked through the log below
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err == nil || !strings.Contains(err.Error(), "input/output error") {
			t.Errorf("%s: reading the damaged disk: %v, want EIO", name, err)
		}
	}
	log := readFile(m.logFile)
	for _, want := range []string{"badgrain.vmdk: grain", "outofrange.vmdk", "badlba.vmdk: grain", "grain marker says LBA 123456", "truncated.vmdk", "huge.vmdk", "bomb.vmdk: grain"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not mention %q", want)
		}
	}
	// The daemon still serves the good disk, in full.
	sameFile(t, m.path("disks/good.vmdk.raw"), raw)
}

// bombGrain replaces the first grain's data with a zlib stream that
// inflates to 64 MiB, in a record that still fits the original space
// (deflate of zeros compresses about 1000:1).
func bombGrain(t *testing.T, b []byte, grain int64) []byte {
	var z bytes.Buffer
	zw := newZlibWriter(&z)
	zw.Write(make([]byte, 64<<20))
	zw.Close()
	rec := append(binary.LittleEndian.AppendUint64(nil, 0), binary.LittleEndian.AppendUint32(nil, uint32(z.Len()))...)
	rec = append(rec, z.Bytes()...)
	out := append(bytes.Clone(b[:grain]), rec...)
	pad := (512 - len(out)%512) % 512
	out = append(out, make([]byte, pad)...)
	// The rest of the file (tables, footer) shifts: keep the original tail
	// where it was by only overwriting when it fits.
	if int64(len(out)) <= int64(len(b)) {
		copy(b[grain:], out[grain:])
		return b
	}
	t.Fatalf("bomb record of %d bytes does not fit", len(rec))
	return nil
}

// TestLoopMount attaches the raw view to a loop device, as a hypervisor
// host would, and mounts its ext4 partition read-only.
func TestLoopMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	testutil.RequireTool(t, "losetup")
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	img := filepath.Join(t.TempDir(), "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, img)
	m := mountArchive(t, packOVA(t, map[string]string{"disk1.vmdk": img}, "disk1.vmdk"))
	view := m.path("disks/disk1.vmdk.raw")

	out, err := exec.Command("losetup", "-rfP", "--show", view).Output()
	if err != nil {
		t.Skipf("no loop device available here: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", dev).Run()
	if pt, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "PTTYPE", dev).Output(); strings.TrimSpace(string(pt)) != "dos" {
		t.Errorf("blkid sees partition table %q on %s, want dos", pt, dev)
	}
	// Where udev makes the partition node, mount it; elsewhere (containers)
	// mount the partition through a loop device at its offset.
	part := dev + "p1"
	if _, err := os.Stat(part); err != nil {
		out, err := exec.Command("losetup", "-r", "-o", "1048576", "-f", "--show", view).Output()
		if err != nil {
			t.Fatalf("losetup -o: %v", err)
		}
		part = strings.TrimSpace(string(out))
		defer exec.Command("losetup", "-d", part).Run()
	}
	got := mountExt4(t, part)
	// The same file system straight from the original raw image.
	out, err = exec.Command("losetup", "-r", "-o", "1048576", "-f", "--show", raw).Output()
	if err != nil {
		t.Fatalf("losetup of the original: %v", err)
	}
	orig := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", orig).Run()
	want := mountExt4(t, orig)
	if len(got) < 10 || len(got) != len(want) {
		t.Fatalf("the guest file system holds %d files through the view, %d in the original", len(got), len(want))
	}
	for name, sum := range want {
		if got[name] != sum {
			t.Errorf("%s differs between the view and the original disk", name)
		}
	}
}

// mountExt4 mounts a block device read-only and returns a digest of every
// file in it, by path.
func mountExt4(t *testing.T, dev string) map[string][32]byte {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "ro", "-t", "ext4", dev, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v %s", dev, err, out)
	}
	defer exec.Command("umount", mnt).Run()
	sums := map[string][32]byte{}
	filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(mnt, p)
			sums[rel] = sha256.Sum256(b)
		}
		return nil
	})
	return sums
}

// TestSeekDataThroughQemu converts the raw view with qemu-img, which
// skips holes with SEEK_DATA/SEEK_HOLE, and checks the copy, and that the
// view reports holes at all.
func TestSeekDataThroughQemu(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	img := filepath.Join(t.TempDir(), "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, img)
	m := mountArchive(t, packOVA(t, map[string]string{"disk1.vmdk": img}, "disk1.vmdk"))
	view := m.path("disks/disk1.vmdk.raw")
	f, err := os.Open(view)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil || hole >= 64<<20 {
		t.Errorf("SEEK_HOLE from 0 = %d, %v; the disk has holes", hole, err)
	}
	var st syscall.Stat_t
	syscall.Stat(view, &st)
	if st.Blocks*512 >= 64<<20 {
		t.Errorf("st_blocks %d covers the whole disk; du would show no holes", st.Blocks)
	}
	copyOf := filepath.Join(t.TempDir(), "copy.raw")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "raw", view, copyOf)
	sameFile(t, copyOf, raw)
}

// TestDisksFolderConflict: an archive with its own top-level "disks"
// member keeps it, and the views go to disks.ovfmount.
func TestDisksFolderConflict(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	img := filepath.Join(t.TempDir(), "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, img)
	mine := filepath.Join(t.TempDir(), "disks")
	os.WriteFile(mine, []byte("the archive's own file"), 0o644)
	m := mountArchive(t, packOVA(t, map[string]string{"disk1.vmdk": img, "disks": mine}))
	if b, _ := os.ReadFile(m.path("disks")); string(b) != "the archive's own file" {
		t.Errorf("the archive's disks member: %q", b)
	}
	sameFile(t, m.path("disks.ovfmount/disk1.vmdk.raw"), raw)
}

// TestShortLastGrain: a disk whose size is not a whole number of grains,
// in qemu's layout and in ovftool's, read to the last byte.
func TestShortLastGrain(t *testing.T) {
	const size = 40<<20 + 3*512 // three sectors into the last grain
	dir := t.TempDir()
	raw := filepath.Join(dir, "odd.raw")
	src := filepath.Join(dir, "files")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "hello.txt"), bytes.Repeat([]byte("hello ovfmount\n"), 10000), 0o644)
	if err := sample.PartitionedDisk(raw, src, size); err != nil {
		t.Fatal(err)
	}
	// Put data in the very last sector, which the file system leaves empty.
	f, _ := os.OpenFile(raw, os.O_WRONLY, 0)
	f.WriteAt(bytes.Repeat([]byte("END!"), 128), size-512)
	f.Close()
	qemuStream := filepath.Join(dir, "qemu.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, qemuStream)
	ourStream := filepath.Join(dir, "ovftool-layout.vmdk")
	in, _ := os.Open(raw)
	out, _ := os.Create(ourStream)
	if err := vmdkwriter.Write(out, in, size); err != nil {
		t.Fatal(err)
	}
	in.Close()
	out.Close()
	m := mountArchive(t, packOVA(t, map[string]string{"qemu.vmdk": qemuStream, "ovftool-layout.vmdk": ourStream}))
	for _, name := range []string{"qemu.vmdk", "ovftool-layout.vmdk"} {
		view := m.path("disks/" + name + ".raw")
		sameFile(t, view, raw)
		g, _ := os.Open(view)
		if b := pread(t, g, 4096, size-512); string(b[:4]) != "END!" || len(b) != 512 {
			t.Errorf("%s: the last sector reads %q (%d bytes)", name, b[:min(4, len(b))], len(b))
		}
		g.Close()
	}
}
