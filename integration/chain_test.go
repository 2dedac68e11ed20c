package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
	"golang.org/x/sys/unix"
)

// chainFiles builds a three-layer chain with qemu-img create -b (a QCOW2
// leaf on a QCOW2 on a monolithicSparse VMDK), with writes into each layer
// by qemu-io, and returns the folder and the layers, leaf first.
func chainFiles(t *testing.T) (string, []string) {
	t.Helper()
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "qemu-io")
	dir := t.TempDir()
	io := func(format, file string, cmds ...string) {
		args := []string{"-f", format}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		if out, err := exec.Command("qemu-io", append(args, filepath.Join(dir, file))...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-io %s: %v\n%s", file, err, out)
		}
	}
	testutil.QemuImg(t, "create", "-q", "-f", "vmdk", filepath.Join(dir, "base.vmdk"), "16M")
	io("vmdk", "base.vmdk", "write -P 0x11 0 4M", "write -P 0x12 8M 1M")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base.vmdk", "-F", "vmdk", filepath.Join(dir, "mid.qcow2"))
	io("qcow2", "mid.qcow2", "write -P 0x21 1M 512k", "write -z 2M 1M", "write -P 0x22 12M 64k")
	// The leaf names its parent by an absolute host path, as qemu-img
	// often writes it: only the file name is looked up, in the package.
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", filepath.Join("/var/lib/images", "mid.qcow2"), "-F", "qcow2", filepath.Join(dir, "leaf.qcow2"), "16M")
	testutil.QemuImg(t, "rebase", "-u", "-b", "mid.qcow2", "-F", "qcow2", filepath.Join(dir, "leaf.qcow2")) // qemu-io must find it
	io("qcow2", "leaf.qcow2", "write -P 0x31 1536k 1M", "write -c -P 0x32 9M 64k", "write -z 0 64k")
	testutil.QemuImg(t, "rebase", "-u", "-b", "/var/lib/images/mid.qcow2", "-F", "qcow2", filepath.Join(dir, "leaf.qcow2"))
	return dir, []string{"leaf.qcow2", "mid.qcow2", "base.vmdk"}
}

// chainOracle is qemu-img convert -O raw of a layer, read through its
// backing files in dir.
func chainOracle(t *testing.T, dir, layer string) string {
	t.Helper()
	img := filepath.Join(dir, layer)
	if layer == "leaf.qcow2" {
		// qemu finds the parent by the name the leaf holds; give it one
		// that resolves here, in a copy.
		cp := filepath.Join(t.TempDir(), "leaf.qcow2")
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(cp, b, 0o644)
		testutil.QemuImg(t, "rebase", "-u", "-b", filepath.Join(dir, "mid.qcow2"), "-F", "qcow2", cp)
		img = cp
	}
	return testutil.RawOracle(t, t.TempDir(), img, "")
}

// qemuMapRun is a line of qemu-img map --output=json.
type qemuMapRun struct {
	Start, Length       int64
	Depth               int
	Present, Zero, Data bool
}

// qemuLeafMap is qemu-img map of the leaf, read through its parents in dir.
func qemuLeafMap(t *testing.T, dir string) []qemuMapRun {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "leaf.qcow2")
	b, err := os.ReadFile(filepath.Join(dir, "leaf.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cp, b, 0o644)
	testutil.QemuImg(t, "rebase", "-u", "-b", filepath.Join(dir, "mid.qcow2"), "-F", "qcow2", cp)
	qo, err := exec.Command("qemu-img", "map", "--output=json", cp).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []qemuMapRun
	if err := json.Unmarshal(qo, &want); err != nil {
		t.Fatal(err)
	}
	return want
}

func chainPackage(t *testing.T, dir string, layers []string) []testpkg.File {
	files := []testpkg.File{{Name: "app.ovf", Data: testpkg.Descriptor(layers[0])}}
	for _, l := range layers {
		b, err := os.ReadFile(filepath.Join(dir, l))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, testpkg.File{Name: l, Data: b})
	}
	mf := testpkg.Manifest("SHA256", files...)
	mf.Name = "app.mf"
	return append(files[:1], append([]testpkg.File{mf}, files[1:]...)...)
}

// TestDiskChains mounts a package that holds a three-layer chain, as an
// OVA (strictly verified) and as an unpacked folder: every layer's view
// equals qemu-img convert of that layer, ovfmount map agrees with
// qemu-img map on data, zero and depth for every byte, info shows the
// chain, and --disk-chain=off gives the children no view.
func TestDiskChains(t *testing.T) {
	dir, layers := chainFiles(t)
	files := chainPackage(t, dir, layers)
	ova := filepath.Join(t.TempDir(), "chain.ova")
	testpkg.WriteOVA(t, ova, files...)
	folder := t.TempDir()
	testpkg.WriteFolder(t, folder, files...)

	t.Run("ova", func(t *testing.T) {
		m := mountArchive(t, ova, "--verify=strict")
		for _, l := range layers {
			sameFile(t, m.path("disks/"+l+".raw"), chainOracle(t, dir, l))
		}
		// SEEK_DATA and SEEK_HOLE follow the whole chain: the data runs
		// they find are qemu-img map's.
		f, err := os.Open(m.path("disks/leaf.qcow2.raw"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var got, want []string
		for off := int64(0); off < 16<<20; {
			d := nextData(f, off, 16<<20)
			if d >= 16<<20 {
				break
			}
			h, err := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d-%d", d, h))
			off = h
		}
		for _, w := range qemuLeafMap(t, dir) {
			if !w.Data {
				continue
			}
			if n := len(want); n > 0 && strings.HasSuffix(want[n-1], fmt.Sprintf("-%d", w.Start)) {
				first, _, _ := strings.Cut(want[n-1], "-")
				want[n-1] = fmt.Sprintf("%s-%d", first, w.Start+w.Length)
				continue
			}
			want = append(want, fmt.Sprintf("%d-%d", w.Start, w.Start+w.Length))
		}
		if len(want) < 3 || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("SEEK_DATA/SEEK_HOLE find data at %v; qemu-img map at %v", got, want)
		}
	})
	t.Run("folder", func(t *testing.T) {
		m := mountArchive(t, filepath.Join(folder, "app.ovf"))
		sameFile(t, m.path("disks/leaf.qcow2.raw"), chainOracle(t, dir, "leaf.qcow2"))
	})
	t.Run("map", func(t *testing.T) {
		code, out := runOvfmount(t, "map", "--json", ova, "leaf.qcow2")
		if code != 0 {
			t.Fatalf("map: exit %d\n%s", code, out)
		}
		var got []struct {
			Start, Length       int64
			Depth               int
			Present, Zero, Data bool
			File                string
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("map --json: %v\n%s", err, out)
		}
		want := qemuLeafMap(t, dir)
		// Byte by byte: the runs may be cut in other places.
		i := 0
		for _, g := range got {
			if g.File != layers[g.Depth] {
				t.Errorf("run at %d: depth %d but file %s", g.Start, g.Depth, g.File)
			}
			for pos := g.Start; pos < g.Start+g.Length; {
				for i < len(want) && want[i].Start+want[i].Length <= pos {
					i++
				}
				if i == len(want) {
					t.Fatalf("qemu-img map ends before %d", pos)
				}
				w := want[i]
				if g.Depth != w.Depth || g.Present != w.Present || g.Zero != w.Zero || g.Data != w.Data {
					t.Fatalf("at %d: ovfmount map %+v; qemu-img map %+v", pos, g, w)
				}
				pos = min(g.Start+g.Length, w.Start+w.Length)
			}
		}
		if l := got[len(got)-1]; l.Start+l.Length != 16<<20 {
			t.Errorf("the map ends at %d, not at the disk's end", l.Start+l.Length)
		}
	})
	t.Run("info", func(t *testing.T) {
		code, out := runOvfmount(t, "info", "--json", ova)
		if code != 0 {
			t.Fatalf("info: exit %d\n%s", code, out)
		}
		var r struct {
			Disks []struct {
				File  string
				Chain []string
			}
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		chains := map[string]string{}
		for _, d := range r.Disks {
			chains[d.File] = strings.Join(d.Chain, " ")
		}
		if chains["leaf.qcow2"] != "mid.qcow2 base.vmdk" || chains["mid.qcow2"] != "base.vmdk" || chains["base.vmdk"] != "" {
			t.Errorf("info's chains: %v", chains)
		}
	})
	t.Run("off", func(t *testing.T) {
		m := mountArchive(t, ova, "--disk-chain=off")
		for _, l := range layers[:2] {
			if _, err := os.Stat(m.path("disks/" + l + ".raw")); err == nil {
				t.Errorf("%s has a view with --disk-chain=off", l)
			}
		}
		sameFile(t, m.path("disks/base.vmdk.raw"), chainOracle(t, dir, "base.vmdk"))
		if log := readFile(m.logFile); !strings.Contains(log, "leaf.qcow2: no raw view") {
			t.Errorf("the log does not say why the leaf has no view:\n%s", log)
		}
	})
	t.Run("climbing name", func(t *testing.T) {
		// The leaf names a host file by a climbing path: only its last
		// element is looked up, in the package, where it is not.
		leaf := filepath.Join(t.TempDir(), "leaf.qcow2")
		b, _ := os.ReadFile(filepath.Join(dir, "leaf.qcow2"))
		os.WriteFile(leaf, b, 0o644)
		testutil.QemuImg(t, "rebase", "-u", "-b", "../../../../../../etc/hostname", "-F", "raw", leaf)
		m := mountArchive(t, packOVA(t, map[string]string{"leaf.qcow2": leaf, "mid.qcow2": filepath.Join(dir, "mid.qcow2")}))
		if _, err := os.Stat(m.path("disks/leaf.qcow2.raw")); err == nil {
			t.Error("a view for a leaf whose parent is a host path")
		}
		if log := readFile(m.logFile); !strings.Contains(log, "etc/hostname") || !strings.Contains(log, "not in the package") {
			t.Errorf("the log does not name the parent it wanted:\n%s", log)
		}
	})
	t.Run("parent missing", func(t *testing.T) {
		m := mountArchive(t, packOVA(t, map[string]string{"leaf.qcow2": filepath.Join(dir, "leaf.qcow2")}))
		if _, err := os.Stat(m.path("disks/leaf.qcow2.raw")); err == nil {
			t.Error("a view for a leaf whose parent is absent")
		}
		log := readFile(m.logFile)
		for _, want := range []string{"leaf.qcow2: no raw view", "/var/lib/images/mid.qcow2", "not in the package"} {
			if !strings.Contains(log, want) {
				t.Errorf("the log does not say %q:\n%s", want, log)
			}
		}
	})
}
