package vmdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// readChain reads p at off from the chain whose top layer is layers[0]:
// where a layer's Map says Hole, the layer below shows through, and below
// the last layer there are zeros. It is the contract of blockmap.Parent as
// package vdisk walks it, written out plainly, so that the layers' maps can
// be checked against qemu-img, which reads the chain itself.
func readChain(t *testing.T, layers []blockmap.Mapper, p []byte, off int64) {
	t.Helper()
	top := layers[0]
	for done := 0; done < len(p); {
		pos := off + int64(done)
		r, err := top.Map(pos)
		if err != nil {
			t.Fatalf("Map(%d): %v", pos, err)
		}
		if err := r.Check(pos, top.Size()); err != nil {
			t.Fatalf("Map(%d) = %+v: %v", pos, r, err)
		}
		n := int(min(r.End()-pos, int64(len(p)-done)))
		dst := p[done : done+n]
		switch {
		case r.Kind == blockmap.Hole && len(layers) > 1:
			below := layers[1]
			clear(dst)
			if pos < below.Size() {
				readChain(t, layers[1:], dst[:min(int64(n), below.Size()-pos)], pos)
			}
		case r.Kind == blockmap.Hole || r.Kind == blockmap.Zero:
			clear(dst)
		default:
			if _, err := blockmap.ReadAt(top, dst, pos); err != nil {
				t.Fatalf("ReadAt(%d, %d): %v", pos, n, err)
			}
		}
		done += n
	}
}

// chainBytes reads a whole chain with readChain.
func chainBytes(t *testing.T, layers ...blockmap.Mapper) []byte {
	t.Helper()
	b := make([]byte, layers[0].Size())
	readChain(t, layers, b, 0)
	return b
}

// qemuExtent is one entry of qemu-img map --output=json.
type qemuExtent struct {
	Start   int64  `json:"start"`
	Length  int64  `json:"length"`
	Present bool   `json:"present"`
	Zero    bool   `json:"zero"`
	Data    bool   `json:"data"`
	Offset  *int64 `json:"offset"`
}

// qemuMapAlone is qemu-img's map of one layer of a chain, opened without
// its backing file: present=false is what the parent supplies.
func qemuMapAlone(t *testing.T, path string) []qemuExtent {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`json:{"driver":"vmdk","file":{"driver":"file","filename":%q},"backing":null}`, abs)
	out, err := exec.Command("qemu-img", "map", "--output=json", spec).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img map %s: %v\n%s", spec, err, out)
	}
	var ext []qemuExtent
	if err := json.Unmarshal(out, &ext); err != nil {
		t.Fatalf("qemu-img map: %v\n%s", err, out)
	}
	return ext
}

// checkMapAgainstQemu walks im's map over every extent qemu reports and
// checks that Hole, Zero and Stored fall exactly where qemu has
// unallocated, zeroed and allocated ranges, and that stored bytes sit at
// the offset qemu gives. It returns the bytes of each kind.
func checkMapAgainstQemu(t *testing.T, im *Image, ext []qemuExtent) map[blockmap.Kind]int64 {
	t.Helper()
	seen := map[blockmap.Kind]int64{}
	var covered int64
	for _, e := range ext {
		want := blockmap.Hole
		switch {
		case e.Data:
			want = blockmap.Stored
		case e.Present:
			want = blockmap.Zero
		}
		end := e.Start + e.Length
		for pos := e.Start; pos < end; {
			r, err := im.Map(pos)
			if err != nil {
				t.Fatalf("Map(%d): %v", pos, err)
			}
			if err := r.Check(pos, im.Size()); err != nil {
				t.Fatalf("Map(%d) = %+v: %v", pos, r, err)
			}
			if r.Kind != want {
				t.Fatalf("Map(%d) = %v, qemu-img map says %v for [%d, +%d) (%+v)", pos, r.Kind, want, e.Start, e.Length, e)
			}
			if want == blockmap.Stored {
				if e.Offset == nil {
					t.Fatalf("qemu-img map gives no offset for data at %d", e.Start)
				}
				if got, exp := r.Phys+(pos-r.Off), *e.Offset+(pos-e.Start); got != exp {
					t.Fatalf("Map(%d): stored at %d, qemu-img says %d", pos, got, exp)
				}
			}
			next := min(r.End(), end)
			seen[want] += next - pos
			pos = next
		}
		covered += e.Length
	}
	if covered != im.Size() {
		t.Fatalf("qemu-img map covers %d bytes of %d", covered, im.Size())
	}
	return seen
}

func qemuIO(t *testing.T, img string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "vmdk"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	if out, err := exec.Command("qemu-io", append(args, img)...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io %q: %v\n%s", cmds, err, out)
	}
}

// qemuCIDs returns the CID and parent CID qemu-img info reads.
func qemuCIDs(t *testing.T, img string) (cid, parent uint32) {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output=json", img).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", img, err)
	}
	var info struct {
		Specific struct {
			Data struct {
				CID       uint32 `json:"cid"`
				ParentCID uint32 `json:"parent-cid"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info.Specific.Data.CID, info.Specific.Data.ParentCID
}

func hexCID(t *testing.T, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		t.Fatalf("CID %q is not hex: %v", s, err)
	}
	return uint32(v)
}

func openChild(t *testing.T, path string, allow bool) (*Image, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Open(f, st.Size(), Options{Name: filepath.Base(path), Resolve: dirResolver(t, filepath.Dir(path)), AllowParent: allow})
}

// notVMDK is a Mapper of another format, for Check.
type notVMDK struct{}

func (notVMDK) Size() int64    { return 1 << 20 }
func (notVMDK) Format() string { return "qcow2 v3" }
func (notVMDK) Map(int64) (blockmap.Run, error) {
	return blockmap.Run{Off: 0, Len: 1 << 20, Kind: blockmap.Hole}, nil
}

// TestQemuDeltaChain builds a three-layer chain with qemu-img (a base, a
// delta, a delta of the delta) in both hosted sparse subformats, with and
// without zeroed-grain entries, writes into every layer with qemu-io, and
// checks each layer's map against qemu-img map of that layer alone, and
// the chain walked through the maps against qemu-img convert of the chain.
func TestQemuDeltaChain(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "qemu-io")
	const M = 1 << 20
	for _, sub := range []string{"monolithicSparse", "twoGbMaxExtentSparse"} {
		for _, zeroed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/zeroed_grain=%v", sub, zeroed), func(t *testing.T) {
				dir := t.TempDir()
				opts := "subformat=" + sub
				if zeroed {
					opts += ",zeroed_grain=on"
				}
				base := filepath.Join(dir, "base.vmdk")
				child := filepath.Join(dir, "child.vmdk")
				grand := filepath.Join(dir, "grand.vmdk")
				// 72 MiB: three grain tables of 32 MiB, the last one short.
				testutil.QemuImg(t, "create", "-f", "vmdk", "-o", opts, base, "72M")
				qemuIO(t, base, "write -P 0x11 0 3M", "write -P 0x12 40M 1M", "write -P 0x13 70M 2M")
				testutil.QemuImg(t, "create", "-f", "vmdk", "-o", opts, "-b", "base.vmdk", "-F", "vmdk", child)
				qemuIO(t, child,
					"write -P 0x55 64k 64k",      // a whole grain over the parent's data
					"write -P 0x56 1049088 1000", // part of a grain: qemu copies the rest from the parent
					"write -z 2M 128k",           // zeros over the parent's data
					"write -P 0x57 33M 4k",       // where the parent has nothing
					"write -z 50M 64k",           // zeros where the parent has nothing
					"write -P 0x58 72700k 70k",   // across grains, to the disk's end
				)
				testutil.QemuImg(t, "create", "-f", "vmdk", "-o", opts, "-b", "child.vmdk", "-F", "vmdk", grand)
				qemuIO(t, grand, "write -P 0x77 0 4k", "write -z 70M 64k", "write -P 0x78 40M 1M")

				bi, err := openChild(t, base, true)
				if err != nil {
					t.Fatal(err)
				}
				ci, err := openChild(t, child, true)
				if err != nil {
					t.Fatal(err)
				}
				gi, err := openChild(t, grand, true)
				if err != nil {
					t.Fatal(err)
				}
				if bi.Parent() != nil {
					t.Fatalf("base: Parent() = %+v, want nil", bi.Parent())
				}
				for _, l := range []struct {
					im         *Image
					path, hint string
					parent     *Image
				}{{ci, child, "base.vmdk", bi}, {gi, grand, "child.vmdk", ci}} {
					p := l.im.Parent()
					if p == nil || len(p.Names) != 1 || p.Names[0] != l.hint || p.Format != "vmdk" || p.Check == nil {
						t.Fatalf("%s: Parent() = %+v, want names [%s], format vmdk and a Check", l.path, p, l.hint)
					}
					if err := p.Check(l.parent); err != nil {
						t.Fatalf("%s: Check(its parent): %v", l.path, err)
					}
					cid, pcid := qemuCIDs(t, l.path)
					if hexCID(t, l.im.CID()) != cid {
						t.Errorf("%s: CID() = %s, qemu-img reads %08x", l.path, l.im.CID(), cid)
					}
					if pc, _ := qemuCIDs(t, filepath.Join(dir, l.hint)); pc != pcid {
						t.Errorf("%s: qemu-img says parent CID %08x, the parent's CID is %08x", l.path, pcid, pc)
					}
				}
				// The grandchild was not written against the base.
				err = gi.Parent().Check(bi)
				if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), ci.CID()) || !strings.Contains(err.Error(), bi.CID()) {
					t.Fatalf("Check(base) for the grandchild: %v; want ErrCorrupt naming %s and %s", err, ci.CID(), bi.CID())
				}
				// A parent of another format is refused, as qemu refuses
				// to read through one: given the base's bytes as a raw
				// backing file, its reads fail.
				err = ci.Parent().Check(notVMDK{})
				if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), "qcow2 v3") || !strings.Contains(err.Error(), "not a VMDK") {
					t.Fatalf("Check(qcow2): %v; want ErrUnsupported naming the format", err)
				}
				rawBase := testutil.RawOracle(t, dir, base, "vmdk")
				over := fmt.Sprintf(`json:{"driver":"vmdk","file":{"driver":"file","filename":%q},"backing":{"driver":"raw","file":{"driver":"file","filename":%q}}}`, child, rawBase)
				if out, err := exec.Command("qemu-img", "convert", "-O", "raw", over, filepath.Join(dir, "over-raw.raw")).CombinedOutput(); err == nil || !strings.Contains(string(out), "error while reading") {
					t.Fatalf("qemu-img convert over a raw parent: %v\n%s\nwant a read error: qemu refuses to read through a parent without a CID", err, out)
				}

				kinds := map[string]map[blockmap.Kind]int64{}
				for _, l := range []struct {
					name string
					im   *Image
					path string
				}{{"base", bi, base}, {"child", ci, child}, {"grand", gi, grand}} {
					kinds[l.name] = checkMapAgainstQemu(t, l.im, qemuMapAlone(t, l.path))
				}
				// Every kind the writes produce is there: the test is not
				// vacuous.
				if kinds["child"][blockmap.Hole] == 0 || kinds["child"][blockmap.Stored] == 0 || kinds["grand"][blockmap.Hole] == 0 {
					t.Fatalf("layers lack holes or data: %v", kinds)
				}
				if zeroed != (kinds["child"][blockmap.Zero] == 192<<10) {
					t.Fatalf("child has %d bytes of zeroed grains; zeroed_grain=%v", kinds["child"][blockmap.Zero], zeroed)
				}
				t.Logf("child: %d hole, %d zero, %d stored; grandchild: %d hole, %d zero, %d stored",
					kinds["child"][blockmap.Hole], kinds["child"][blockmap.Zero], kinds["child"][blockmap.Stored],
					kinds["grand"][blockmap.Hole], kinds["grand"][blockmap.Zero], kinds["grand"][blockmap.Stored])

				for _, c := range []struct {
					path   string
					layers []blockmap.Mapper
				}{{child, []blockmap.Mapper{ci, bi}}, {grand, []blockmap.Mapper{gi, ci, bi}}} {
					want, err := os.ReadFile(testutil.RawOracle(t, t.TempDir(), c.path, "vmdk"))
					if err != nil {
						t.Fatal(err)
					}
					got := chainBytes(t, c.layers...)
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("%s: the chain read through the maps differs from qemu-img convert at byte %d", filepath.Base(c.path), i)
					}
				}

				// Without AllowParent, the deltas are refused as before.
				for _, p := range []string{child, grand} {
					_, err := openChild(t, p, false)
					if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), "is a delta disk") {
						t.Fatalf("%s without AllowParent: %v", p, err)
					}
				}
			})
		}
	}
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestParentReference covers the descriptor forms of a delta's link with
// AllowParent: a file name only, a parentCID only, a Windows path, CIDs
// spelled differently, and parents that cannot be checked.
func TestParentReference(t *testing.T) {
	sp := spec{grainSectors: 8, gtes: 4, data: pattern(2*testGrain, testGrain)}.build().file
	open := func(t *testing.T, text string) (*Image, error) {
		m := &memResolver{files: map[string][]byte{"x.vmdk": sp}}
		return Open(strings.NewReader(text), int64(len(text)), Options{Name: "d.vmdk", Resolve: m.resolve, AllowParent: true})
	}
	disk := func(cid, pcid, hint string) string {
		s := "# Disk DescriptorFile\nversion=1\n"
		if cid != "" {
			s += "CID=" + cid + "\n"
		}
		if pcid != "" {
			s += "parentCID=" + pcid + "\n"
		}
		s += "createType=\"twoGbMaxExtentSparse\"\n"
		if hint != "" {
			s += "parentFileNameHint=\"" + hint + "\"\n"
		}
		return s + "RW 16 SPARSE \"x.vmdk\"\n"
	}
	mustOpen := func(t *testing.T, text string) *Image {
		t.Helper()
		im, err := open(t, text)
		if err != nil {
			t.Fatal(err)
		}
		return im
	}
	parent := mustOpen(t, disk("0BADF00D", "ffffffff", ""))
	if parent.Parent() != nil || parent.CID() != "0BADF00D" {
		t.Fatalf("base: Parent() %+v, CID() %q", parent.Parent(), parent.CID())
	}
	noCID := mustOpen(t, disk("", "", ""))

	for _, tc := range []struct {
		name, text string
		names      []string
		parent     *Image
		want       error // from Check
		part       string
	}{
		{"same CID spelled otherwise", disk("1", "badf00d", "base.vmdk"), []string{"base.vmdk"}, parent, nil, ""},
		{"Windows path kept as stored", disk("1", "0badf00d", `C:\VMs\Base Disk\base.vmdk`), []string{`C:\VMs\Base Disk\base.vmdk`}, parent, nil, ""},
		{"absolute host path", disk("1", "0badf00d", "/vmfs/volumes/ds1/vm/base.vmdk"), []string{"/vmfs/volumes/ds1/vm/base.vmdk"}, parent, nil, ""},
		{"name only: nothing to compare", disk("1", "", "base.vmdk"), []string{"base.vmdk"}, noCID, nil, ""},
		{"CID only: no name", disk("1", "0badf00d", ""), nil, parent, nil, ""},
		{"parentCID ffffffff with a name", disk("1", "ffffffff", "base.vmdk"), []string{"base.vmdk"}, parent, blockmap.ErrCorrupt, `parentCID is "ffffffff", but parent "d.vmdk" has CID "0BADF00D"`},
		{"another CID", disk("1", "12345678", "base.vmdk"), []string{"base.vmdk"}, parent, blockmap.ErrCorrupt, `parentCID is "12345678", but parent "d.vmdk" has CID "0BADF00D"`},
		{"parent without a CID", disk("1", "0badf00d", "base.vmdk"), []string{"base.vmdk"}, noCID, blockmap.ErrCorrupt, "has no CID to check it against"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := mustOpen(t, tc.text)
			p := im.Parent()
			if p == nil || p.Format != "vmdk" || fmt.Sprint(p.Names) != fmt.Sprint(tc.names) || (p.Names == nil) != (tc.names == nil) {
				t.Fatalf("Parent() = %+v, want names %q", p, tc.names)
			}
			err := p.Check(tc.parent)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
			} else if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.part) {
				t.Fatalf("Check: %v; want %v mentioning %q", err, tc.want, tc.part)
			}
			if err := p.Check(notVMDK{}); !errors.Is(err, blockmap.ErrUnsupported) {
				t.Fatalf("Check(not a VMDK): %v", err)
			}
			// The default still refuses the delta.
			m := &memResolver{files: map[string][]byte{"x.vmdk": sp}}
			_, err = Open(strings.NewReader(tc.text), int64(len(tc.text)), Options{Name: "d.vmdk", Resolve: m.resolve})
			if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), "is a delta disk") || len(m.asked) != 0 {
				t.Fatalf("without AllowParent: %v (asked %q)", err, m.asked)
			}
		})
	}
}

// TestBuiltMonolithicDelta is a hand-built monolithicSparse delta whose
// tables hold every kind of entry: unallocated grains are the parent's
// (holes), zeroed grains zeros, and a grain table left out of the
// directory wholly the parent's; on a disk without a parent the same
// grains are holes too, as before.
func TestBuiltMonolithicDelta(t *testing.T) {
	data := pattern(40*testGrain, testGrain, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 25)
	b := spec{version: 2, grainSectors: 8, gtes: 4, zeroFlag: true, zeroGrains: map[int]bool{30: true, 31: true}, data: data, parentHint: "../base/base.vmdk"}.build()
	put32(b.file, b.gdAt+4*3, 0) // table 3 (grains 12-15) holds nothing
	for _, allow := range []bool{true, false} {
		im, err := Open(bytes.NewReader(b.file), int64(len(b.file)), Options{Name: "delta.vmdk", AllowParent: allow})
		if !allow {
			if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), `parent "../base/base.vmdk" is not supported`) {
				t.Fatalf("without AllowParent: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if p := im.Parent(); p == nil || len(p.Names) != 1 || p.Names[0] != "../base/base.vmdk" || im.CID() != "12345678" {
			t.Fatalf("Parent() = %+v, CID() = %q", p, im.CID())
		}
		for _, tc := range []struct {
			off, runOff, runLen int64
			kind                blockmap.Kind
		}{
			{0, 0, 4 * testGrain, blockmap.Stored},                         // runs stop at a table's end
			{8*testGrain + 1, 8 * testGrain, 8 * testGrain, blockmap.Hole}, // table 2 and the missing table 3
			{25 * testGrain, 25 * testGrain, testGrain, blockmap.Hole},
			{30 * testGrain, 30 * testGrain, 2 * testGrain, blockmap.Zero},
		} {
			r, err := im.Map(tc.off)
			if err != nil || r.Off != tc.runOff || r.Len != tc.runLen || r.Kind != tc.kind {
				t.Errorf("Map(%d) = %v [%d, +%d), %v; want %v [%d, +%d)", tc.off, r.Kind, r.Off, r.Len, err, tc.kind, tc.runOff, tc.runLen)
			}
		}
		// Over a parent of 0xee bytes, the chain is the delta's data,
		// the parent in its holes, and zeros in its zeroed grains.
		parent := &flatMapper{b: bytes.Repeat([]byte{0xee}, len(data))}
		want := append([]byte(nil), data...)
		for _, g := range []int{8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 25} {
			copy(want[g*testGrain:(g+1)*testGrain], parent.b)
		}
		clear(want[30*testGrain : 32*testGrain])
		if i := firstDiff(chainBytes(t, im, parent), want); i >= 0 {
			t.Fatalf("chain differs from the model at byte %d", i)
		}
	}
}

// TestStreamDelta is a streamOptimized delta (grain directory at the end):
// its compressed grains are its own, the rest the parent's.
func TestStreamDelta(t *testing.T) {
	data := pattern(20*testGrain+512, testGrain, 3, 4, 5, 6, 7, 8, 20)
	b := spec{version: 3, grainSectors: 8, gtes: 4, compressed: true, markers: true, atEnd: true, data: data, parentHint: "base.vmdk"}.build()
	im, err := Open(bytes.NewReader(b.file), int64(len(b.file)), Options{Name: "s.vmdk", AllowParent: true})
	if err != nil {
		t.Fatal(err)
	}
	if im.Parent() == nil || im.Format() != "vmdk streamOptimized v3 (GD at end)" {
		t.Fatalf("Parent() = %+v, Format() = %q", im.Parent(), im.Format())
	}
	parent := &flatMapper{b: bytes.Repeat([]byte{0x3c}, len(data))}
	want := append([]byte(nil), data...)
	for _, g := range []int{3, 4, 5, 6, 7, 8, 20} {
		copy(want[g*testGrain:min((g+1)*testGrain, len(want))], parent.b)
	}
	if i := firstDiff(chainBytes(t, im, parent), want); i >= 0 {
		t.Fatalf("chain differs from the model at byte %d", i)
	}
}

// flatMapper is a parent of any bytes, for chain models.
type flatMapper struct{ b []byte }

func (f *flatMapper) Size() int64 { return int64(len(f.b)) }
func (f *flatMapper) Map(off int64) (blockmap.Run, error) {
	return blockmap.Run{Off: 0, Len: int64(len(f.b)), Kind: blockmap.Stored, Src: bytes.NewReader(f.b)}, nil
}
