package vdisk

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// folderParents finds parents among the files of one folder, by the base
// name of each name the child gives, as the package does among its files.
func folderParents(dir string) func(child string, ref *blockmap.Parent) ([]Source, error) {
	return func(child string, ref *blockmap.Parent) ([]Source, error) {
		var out []Source
		for _, n := range ref.Names {
			base := n[strings.LastIndexAny(n, `/\`)+1:]
			b, err := os.ReadFile(filepath.Join(dir, base))
			if err != nil {
				continue
			}
			out = append(out, Source{Name: base, R: bytes.NewReader(b), Size: int64(len(b))})
		}
		return out, nil
	}
}

func openFile(t *testing.T, dir, name string, opts Options) (Image, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	opts.Name = name
	return Open(bytes.NewReader(b), int64(len(b)), opts)
}

func qemuIO(t *testing.T, format, file string, cmds ...string) {
	t.Helper()
	args := []string{"-f", format}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	if out, err := exec.Command("qemu-io", append(args, file)...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io %s: %v\n%s", file, err, out)
	}
}

// qemuMapEntry is a line of `qemu-img map --output=json`.
type qemuMapEntry struct {
	Start   int64 `json:"start"`
	Length  int64 `json:"length"`
	Depth   int   `json:"depth"`
	Present bool  `json:"present"`
	Zero    bool  `json:"zero"`
	Data    bool  `json:"data"`
}

// compareChainMap checks Provenance against qemu-img map of the same leaf,
// for every byte: the same data, zero and depth.
func compareChainMap(t *testing.T, im Image, dir, leaf string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "map", "--output=json", filepath.Join(dir, leaf)).Output()
	if err != nil {
		t.Fatalf("qemu-img map %s: %v", leaf, err)
	}
	var want []qemuMapEntry
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	i := 0
	for pos := int64(0); pos < im.Size(); {
		p, err := im.Provenance(pos)
		if err != nil {
			t.Fatalf("Provenance(%d): %v", pos, err)
		}
		end := p.Off + p.Len
		for pos < end {
			for i < len(want) && want[i].Start+want[i].Length <= pos {
				i++
			}
			if i == len(want) {
				t.Fatalf("qemu-img map ends before %d; the disk is %d bytes", pos, im.Size())
			}
			w := want[i]
			data := p.Kind.HasData()
			zero := !data
			if data != w.Data || zero != w.Zero || p.Depth != w.Depth || (p.Kind != blockmap.Hole) != w.Present {
				t.Fatalf("at %d: %v at depth %d; qemu-img map says %+v", pos, p.Kind, p.Depth, w)
			}
			pos = min(end, w.Start+w.Length)
		}
	}
}

func compareChainBytes(t *testing.T, im Image, dir, leaf string) {
	t.Helper()
	want, err := os.ReadFile(testutil.RawOracle(t, dir, filepath.Join(dir, leaf), ""))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, im.Size())
	if n, err := im.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if len(want) != len(got) || !bytes.Equal(got, want) {
		t.Fatalf("%s: the chain's %d bytes differ from qemu-img convert's %d", leaf, len(got), len(want))
	}
}

// TestChains reads three-layer chains built by qemu-img create -b, with
// writes (data, zeros, compressed data) into each layer by qemu-io, and
// compares each leaf with qemu-img convert (bytes) and qemu-img map (data,
// zero and depth of every byte).
func TestChains(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "qemu-io")
	for _, tc := range []struct {
		name       string
		base, over string // formats
		baseSize   string
	}{
		{"qcow2 on qcow2", "qcow2", "qcow2", "4M"},
		{"qcow2 on raw", "raw", "qcow2", "4M"},
		{"qcow2 on a smaller qcow2", "qcow2", "qcow2", "2M"},
		{"qcow2 on a larger qcow2", "qcow2", "qcow2", "6M"},
		{"qcow2 on vmdk", "vmdk", "qcow2", "4M"},
		{"vmdk on vmdk", "vmdk", "vmdk", "4M"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base := "base." + tc.base
			args := []string{"create", "-q", "-f", tc.base}
			if tc.base == "raw" {
				// Allocated, as a member of an archive is: qemu-img map
				// calls a sparse file's holes zeros, the package cannot.
				args = append(args, "-o", "preallocation=full")
			}
			testutil.QemuImg(t, append(args, filepath.Join(dir, base), tc.baseSize)...)
			qemuIO(t, tc.base, filepath.Join(dir, base), "write -P 0x11 0 1M", "write -P 0x12 1536k 64k")
			mid, leaf := "mid."+tc.over, "leaf."+tc.over
			testutil.QemuImg(t, "create", "-q", "-f", tc.over, "-b", base, "-F", tc.base, filepath.Join(dir, mid), "4M")
			zero, compressed := "write -z 64k 64k", "write -c -P 0x33 3M 64k"
			if tc.over == "vmdk" {
				// A monolithicSparse disk takes neither: qemu writes
				// zeros as data there, and compresses only
				// streamOptimized grains.
				zero, compressed = "write -P 0 64k 64k", "write -P 0x33 3M 64k"
			}
			qemuIO(t, tc.over, filepath.Join(dir, mid), "write -P 0x22 512k 64k", zero, "write -P 0x23 3M 100k")
			testutil.QemuImg(t, "create", "-q", "-f", tc.over, "-b", mid, "-F", tc.over, filepath.Join(dir, leaf), "4M")
			qemuIO(t, tc.over, filepath.Join(dir, leaf), compressed, "write -P 0x34 1M 4k", "write -P 0 0 4k")

			opts := Options{Parents: folderParents(dir)}
			for _, name := range []string{mid, leaf} {
				im, err := openFile(t, dir, name, opts)
				if err != nil {
					t.Fatal(err)
				}
				compareChainBytes(t, im, dir, name)
				compareChainMap(t, im, dir, name)
			}
			im, _ := openFile(t, dir, leaf, opts)
			ls := im.Layers()
			if len(ls) != 3 || ls[0].Name != leaf || ls[1].Name != mid || ls[2].Name != base {
				t.Errorf("Layers() = %v; want %s, %s, %s", ls, leaf, mid, base)
			}
			// Without Parents, a child is refused, as before chains.
			if _, err := openFile(t, dir, leaf, Options{}); !errors.Is(err, ErrUnsupported) {
				t.Errorf("a child opened without Parents: %v; want ErrUnsupported", err)
			}
		})
	}
}

// TestChainParentMissing: a child whose parent is not in the package has
// no view, and the error names the parent it wanted.
func TestChainParentMissing(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "1M")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "/vms/elsewhere/other.qcow2", "-F", "qcow2", "-u", filepath.Join(dir, "gone.qcow2"), "1M")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "vmdk", "-u", filepath.Join(dir, "wrongfmt.qcow2"), "1M")
	opts := Options{Parents: folderParents(dir)}
	_, err := openFile(t, dir, "gone.qcow2", opts)
	if !errors.Is(err, ErrParent) || !strings.Contains(err.Error(), "/vms/elsewhere/other.qcow2") {
		t.Errorf("missing parent: %v", err)
	}
	_, err = openFile(t, dir, "wrongfmt.qcow2", opts)
	if !errors.Is(err, ErrParent) || !strings.Contains(err.Error(), "not vmdk") {
		t.Errorf("parent of another format than backing_fmt: %v", err)
	}
}

// memChain builds QCOW2 images in memory whose backing file names are
// set by next: the loops and depths no tool writes.
func memChain(t *testing.T, names []string, next func(i int) string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	const nameLen = 16
	tmpl := filepath.Join(dir, "tmpl.qcow2")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", strings.Repeat("x", nameLen), "-F", "qcow2", tmpl, "1M")
	b, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	off := binary.BigEndian.Uint64(b[8:])
	if binary.BigEndian.Uint32(b[16:]) != nameLen {
		t.Fatal("template's backing name length")
	}
	files := map[string][]byte{}
	for i, n := range names {
		c := bytes.Clone(b)
		nx := next(i)
		if len(nx) != nameLen {
			t.Fatalf("name %q is not %d bytes", nx, nameLen)
		}
		copy(c[off:], nx)
		files[n] = c
	}
	return files
}

func memParents(files map[string][]byte) func(string, *blockmap.Parent) ([]Source, error) {
	return func(child string, ref *blockmap.Parent) ([]Source, error) {
		var out []Source
		for _, n := range ref.Names {
			if b, ok := files[n]; ok {
				out = append(out, Source{Name: n, R: bytes.NewReader(b), Size: int64(len(b))})
			}
		}
		return out, nil
	}
}

// TestChainHostile: a loop, a child that is its own parent and a chain
// deeper than MaxChainDepth each fail with ErrParent, quickly.
func TestChainHostile(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	name := func(i int) string { return fmt.Sprintf("layer-%04d.qcow2", i) }
	for _, tc := range []struct {
		what   string
		layers int
		next   func(i int) string
		want   string
	}{
		{"a loop", 3, func(i int) string { return name((i + 1) % 3) }, "a loop"},
		{"its own parent", 1, func(i int) string { return name(i) }, "a loop"},
		{"too deep", MaxChainDepth + 5, func(i int) string { return name(i + 1) }, "deeper than"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			var names []string
			for i := range tc.layers {
				names = append(names, name(i))
			}
			files := memChain(t, names, tc.next)
			b := files[name(0)]
			_, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: name(0), Parents: memParents(files)})
			if !errors.Is(err, ErrParent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v; want ErrParent saying %q", err, tc.want)
			}
		})
	}
}

// TestChainVDI reads a three-layer VDI chain through Open, with every file
// offered as a candidate (VDI names its parent by UUID only): qemu-img
// writes each layer as a dynamic VDI, the test turns the upper two into
// differencing images linked by their creation UUIDs (what VirtualBox
// writes; qemu writes no VDI children), and the chain must read, block by
// block, as the topmost layer that holds the block, per qemu-img's own
// reading of each layer alone.
func TestChainVDI(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "qemu-io")
	dir := t.TempDir()
	names := []string{"leaf.vdi", "mid.vdi", "base.vdi"}
	writes := map[string][]string{
		"base.vdi": {"write -P 0x11 0 3M", "write -P 0x12 5M 1M"},
		"mid.vdi":  {"write -P 0x21 1M 1M", "write -P 0x22 6M 512k"},
		"leaf.vdi": {"write -P 0x31 2M 4k", "write -P 0x32 7M 1M"},
	}
	layers := map[string][]byte{}
	alloc := map[string][]qemuMapEntry{}
	for _, n := range names {
		p := filepath.Join(dir, n)
		testutil.QemuImg(t, "create", "-q", "-f", "vdi", p, "8M")
		qemuIO(t, "vdi", p, writes[n]...)
		raw, err := os.ReadFile(testutil.RawOracle(t, t.TempDir(), p, "vdi"))
		if err != nil {
			t.Fatal(err)
		}
		layers[n] = raw
		out, err := exec.Command("qemu-img", "map", "-f", "vdi", "--output=json", p).Output()
		if err != nil {
			t.Fatal(err)
		}
		var m []qemuMapEntry
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		alloc[n] = m
	}
	files := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	const (
		typeAt   = 0x48 + 0x04
		createAt = 0x48 + 0x140
		linkAt   = 0x48 + 0x160
	)
	for i, n := range names[:2] {
		parent := files[names[i+1]]
		binary.LittleEndian.PutUint32(files[n][typeAt:], 4)
		copy(files[n][linkAt:linkAt+16], parent[createAt:createAt+16])
	}
	held := func(n string, off int64) bool {
		for _, e := range alloc[n] {
			if off >= e.Start && off < e.Start+e.Length {
				return e.Data
			}
		}
		return false
	}
	want := make([]byte, 8<<20)
	for off := int64(0); off < int64(len(want)); off += 512 {
		for _, n := range names {
			if held(n, off) {
				copy(want[off:off+512], layers[n][off:])
				break
			}
		}
	}
	all := func(child string, ref *blockmap.Parent) ([]Source, error) {
		if len(ref.Names) != 0 {
			t.Errorf("a VDI child named its parent %q", ref.Names)
		}
		var out []Source
		for _, n := range names {
			out = append(out, Source{Name: n, R: bytes.NewReader(files[n]), Size: int64(len(files[n]))})
		}
		return out, nil
	}
	b := files["leaf.vdi"]
	im, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "leaf.vdi", Parents: all})
	if err != nil {
		t.Fatal(err)
	}
	if ls := im.Layers(); len(ls) != 3 || ls[1].Name != "mid.vdi" || ls[2].Name != "base.vdi" {
		t.Fatalf("Layers() = %v", ls)
	}
	got := make([]byte, len(want))
	if _, err := im.ReadAt(got, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if i := bytes.Compare(got, want); i != 0 {
		for j := range got {
			if got[j] != want[j] {
				t.Fatalf("the chain differs from the layers' topmost blocks at byte %d", j)
			}
		}
	}
}
