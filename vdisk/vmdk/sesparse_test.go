package vmdk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const (
	testParentCID = "0badf00d"
	testChildCID  = "2468ace0"
)

// parentBytes is a parent disk with no zero byte, so that every byte a
// child lets through is told apart from zeros.
func parentBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/512)*3 | 0x81
	}
	return b
}

// writeFlatParent writes a vmfs disk, a descriptor base.vmdk and its flat
// extent, as ESX lays out a snapshot's base disk.
func writeFlatParent(t *testing.T, dir string, data []byte) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "base-flat.vmdk"), data)
	writeFile(t, filepath.Join(dir, "base.vmdk"), []byte(fmt.Sprintf(
		"# Disk DescriptorFile\nversion=1\nCID=%s\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\nRW %d VMFS \"base-flat.vmdk\"\n",
		testParentCID, len(data)/512)))
}

// writeDeltaDescriptor writes the descriptor of an ESX snapshot delta
// whose one extent is file, of the given type.
func writeDeltaDescriptor(t *testing.T, path, createType, extType, file string, sectors int64) {
	t.Helper()
	writeFile(t, path, []byte(fmt.Sprintf(
		"# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=%s\nparentCID=%s\nisNativeSnapshot=\"no\"\ncreateType=%q\nparentFileNameHint=\"base.vmdk\"\n\n"+
			"# Extent description\nRW %d %s %q\n\n# The Disk Data Base\n#DDB\n\nddb.longContentID = \"0123456789abcdef0123456789abcdef\"\n",
		testChildCID, testParentCID, createType, sectors, extType, file)))
}

// openChain opens the delta at child and its parent base.vmdk in the same
// folder, with AllowParent, and checks the link between them.
func openChain(t *testing.T, dir, child string) (*Image, *Image) {
	t.Helper()
	ci, err := openChild(t, filepath.Join(dir, child), true)
	if err != nil {
		t.Fatal(err)
	}
	bi, err := openChild(t, filepath.Join(dir, "base.vmdk"), true)
	if err != nil {
		t.Fatal(err)
	}
	p := ci.Parent()
	if p == nil || len(p.Names) != 1 || p.Names[0] != "base.vmdk" || p.Format != "vmdk" {
		t.Fatalf("Parent() = %+v", p)
	}
	if err := p.Check(bi); err != nil {
		t.Fatalf("Check(base): %v", err)
	}
	if ci.CID() != testChildCID || bi.CID() != testParentCID || bi.Parent() != nil {
		t.Fatalf("CIDs %q and %q, base parent %+v", ci.CID(), bi.CID(), bi.Parent())
	}
	return ci, bi
}

// compareChainWithQemu checks the chain read through the maps, and
// qemu-img convert of the child (which reads through its parent), against
// want, a flat model of the chain.
func compareChainWithQemu(t *testing.T, dir, child string, ci, bi *Image, want []byte) {
	t.Helper()
	if ci.Size() != int64(len(want)) {
		t.Fatalf("Size() = %d, want %d", ci.Size(), len(want))
	}
	if i := firstDiff(chainBytes(t, ci, bi), want); i >= 0 {
		t.Fatalf("the chain read through the maps differs from the model at byte %d", i)
	}
	q, err := os.ReadFile(testutil.RawOracle(t, t.TempDir(), filepath.Join(dir, child), "vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(q, want); i >= 0 {
		t.Fatalf("qemu-img convert of the chain (%d bytes) differs from the model (%d bytes) at byte %d", len(q), len(want), i)
	}
}

// TestCOWDDelta is an ESX vmfsSparse snapshot: a descriptor naming its
// parent, over a VMDK3 (COWD) extent. Unallocated grains, and a whole grain
// table left out of the directory, are the parent's.
func TestCOWDDelta(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	const g = 4096
	size := 20 << 20 // two COWD tables of 16 MiB, the second short
	own := make([]byte, size)
	for _, gr := range []int{0, 1, 2, 7, 100, 101, 4095, 4096 - 2} {
		for i := range g {
			own[gr*g+i] = byte(gr) ^ byte(i>>5) | 0x40
		}
	}
	b := spec{cowd: true, grainSectors: 8, data: own}.build()
	if len(b.gtAt) != 2 {
		t.Fatalf("built %d tables, want 2", len(b.gtAt))
	}
	put32(b.file, b.gdAt+4, 0) // table 1 holds nothing: drop it
	dir := t.TempDir()
	parent := parentBytes(size)
	writeFlatParent(t, dir, parent)
	writeFile(t, filepath.Join(dir, "base-000001-delta.vmdk"), b.file)
	writeDeltaDescriptor(t, filepath.Join(dir, "base-000001.vmdk"), "vmfsSparse", "VMFSSPARSE", "base-000001-delta.vmdk", int64(size/512))

	ci, bi := openChain(t, dir, "base-000001.vmdk")
	want := append([]byte(nil), parent...)
	for gr := 0; gr < size/g; gr++ {
		if b.grainAt[gr] != 0 {
			copy(want[gr*g:(gr+1)*g], own[gr*g:])
		}
	}
	compareChainWithQemu(t, dir, "base-000001.vmdk", ci, bi, want)
	kinds := checkMapAgainstQemu(t, ci, qemuMapAlone(t, filepath.Join(dir, "base-000001.vmdk")))
	if kinds[blockmap.Hole] == 0 || kinds[blockmap.Stored] != 8*g {
		t.Fatalf("map kinds %v; want holes and 8 stored grains", kinds)
	}
	r, err := ci.Map(17 << 20)
	if err != nil || r.Kind != blockmap.Hole || r.Off != 16<<20 || r.End() != int64(size) {
		t.Fatalf("Map in the dropped table = %+v, %v; want one Hole to the end", r, err)
	}

	// Without AllowParent the delta is refused, before any extent is read.
	_, err = openChild(t, filepath.Join(dir, "base-000001.vmdk"), false)
	if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), `parent "base.vmdk" is not supported`) {
		t.Fatalf("without AllowParent: %v", err)
	}
}

// seTestSpec is the seSparse child of the tests: 40 MiB (three grain
// tables, the last one half used, the middle one absent), with runs of
// stored grains, zeroed and unmapped grains, and the disk's last grain
// zeroed.
func seTestSpec() seSpec {
	grains := map[int64]seKind{}
	for _, gr := range []int64{0, 1, 2, 5, 100, 101, 102, 103, 14, 4095, 2*4096 + 7, 2*4096 + 8, 2*4096 + 200} {
		grains[gr] = seData
	}
	for _, gr := range []int64{10, 11, 12, 4094, 2*4096 + 9, 10239} {
		grains[gr] = seZeroed
	}
	for _, gr := range []int64{13, 2*4096 + 100, 2*4096 + 101} {
		grains[gr] = seUnmapped
	}
	return seSpec{capacity: 40 << 20 / 512, grains: grains, data: seGrainData}
}

func seGrainData(g int64) []byte {
	b := make([]byte, seTestGrain)
	for i := range b {
		b[i] = byte(g*7) ^ byte(i>>4) | 0x20
	}
	return b
}

// seModel is the chain's flat bytes: the parent where the child has no
// grain, zeros where it has a zeroed or unmapped one, its data elsewhere.
func seModel(s seSpec, parent []byte) []byte {
	want := append([]byte(nil), parent...)
	for gr, k := range s.grains {
		at := gr * seTestGrain
		switch k {
		case seZeroed, seUnmapped:
			clear(want[at : at+seTestGrain])
		case seData:
			copy(want[at:], s.data(gr))
		}
	}
	return want
}

// TestSESparseDelta builds seSparse snapshots from the layout qemu reads,
// and checks the chain against a flat model and against qemu-img convert
// (qemu reads seSparse), and every grain's kind and place in the map.
func TestSESparseDelta(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	for _, tc := range []struct {
		name string
		mod  func(*seSpec)
	}{
		{"in order", func(*seSpec) {}},
		{"reversed tables and grains", func(s *seSpec) { s.reverse = true }},
		{"grain numbers past 4095", func(s *seSpec) { s.highGrains = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := seTestSpec()
			tc.mod(&s)
			b := s.build()
			dir := t.TempDir()
			size := int(s.capacity * 512)
			parent := parentBytes(size)
			writeFlatParent(t, dir, parent)
			writeFile(t, filepath.Join(dir, "base-000001-sesparse.vmdk"), b.file)
			writeDeltaDescriptor(t, filepath.Join(dir, "base-000001.vmdk"), "seSparse", "SESPARSE", "base-000001-sesparse.vmdk", int64(s.capacity))

			ci, bi := openChain(t, dir, "base-000001.vmdk")
			if f := ci.Format(); f != "vmdk seSparse (1 extent)" {
				t.Errorf("Format() = %q", f)
			}
			if len(ci.Warnings()) != 0 {
				t.Errorf("Warnings() = %q", ci.Warnings())
			}
			compareChainWithQemu(t, dir, "base-000001.vmdk", ci, bi, seModel(s, parent))
			checkMapAgainstQemu(t, ci, qemuMapAlone(t, filepath.Join(dir, "base-000001.vmdk")))

			// Every grain's kind, and where stored grains are.
			runs := 0
			for pos := int64(0); pos < ci.Size(); {
				r, err := ci.Map(pos)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Check(pos, ci.Size()); err != nil {
					t.Fatal(err)
				}
				for at := r.Off; at < r.End(); at += seTestGrain {
					gr := at / seTestGrain
					want := map[seKind]blockmap.Kind{seHole: blockmap.Hole, seZeroed: blockmap.Zero, seUnmapped: blockmap.Zero, seData: blockmap.Stored}[s.grains[gr]]
					if r.Kind != want {
						t.Fatalf("grain %d is in a %v run [%d, +%d), want %v", gr, r.Kind, r.Off, r.Len, want)
					}
					if want == blockmap.Stored && r.Phys+(at-r.Off) != b.grainAt[gr] {
						t.Fatalf("grain %d mapped to %d, built at %d", gr, r.Phys+(at-r.Off), b.grainAt[gr])
					}
				}
				pos = r.End()
				runs++
			}
			t.Logf("%d runs", runs)
			if n := testing.AllocsPerRun(100, func() { ci.Map(101*seTestGrain + 9) }); n != 0 {
				t.Errorf("Map allocates %v times per call with its table cached", n)
			}
			// The absent middle table is one Hole.
			r, err := ci.Map(20 << 20)
			if err != nil || r.Kind != blockmap.Hole || r.Off != 16<<20 || r.End() != 32<<20 {
				t.Fatalf("Map in the absent table = %+v, %v", r, err)
			}
		})
	}
}

// TestSESparseBase reads an seSparse disk with no parent: its unallocated
// grains are holes that read as zeros, as qemu reads them.
func TestSESparseBase(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	s := seTestSpec()
	b := s.build()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "d-sesparse.vmdk"), b.file)
	writeFile(t, filepath.Join(dir, "d.vmdk"), []byte(fmt.Sprintf(
		"# Disk DescriptorFile\nversion=1\nCID=%s\nparentCID=ffffffff\ncreateType=\"seSparse\"\n# Extent description\nRW %d SESPARSE \"d-sesparse.vmdk\"\n", testChildCID, s.capacity)))
	for _, allow := range []bool{false, true} {
		im, err := openChild(t, filepath.Join(dir, "d.vmdk"), allow)
		if err != nil {
			t.Fatal(err)
		}
		if im.Parent() != nil {
			t.Fatalf("Parent() = %+v for a disk without a parent", im.Parent())
		}
		oracle := testutil.RawOracle(t, t.TempDir(), filepath.Join(dir, "d.vmdk"), "vmdk")
		want, err := os.ReadFile(oracle)
		if err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(want, seModel(s, make([]byte, s.capacity*512))); i >= 0 {
			t.Fatalf("qemu-img reads the built disk differently from the model at byte %d (%d bytes)", i, len(want))
		}
		compareImage(t, im, oracle, seTestGrain)
		checkMapAgainstQemu(t, im, qemuMapAlone(t, filepath.Join(dir, "d.vmdk")))
	}
}

// TestSESparseHostile damages the headers, directory and tables of an
// seSparse extent: Open refuses damage in the headers and directory, Map
// the damage in a table it meets, each with the class of error qemu's
// refusal has (unknown versions and features are unsupported, broken
// structures corrupt), and nothing panics or reads outside the member.
func TestSESparseHostile(t *testing.T) {
	s := seTestSpec()
	base := s.build()
	firstGT := base.gtAt[0]
	gr0 := firstGT // grain table 0's first entry: grain 0, stored
	for _, tc := range []struct {
		name    string
		mod     func(f []byte) []byte
		want    error
		part    string
		mapOnly bool // the damage shows in Map, not Open
	}{
		{"magic", func(f []byte) []byte { return put64(f, 0, 0xcafebabf) }, blockmap.ErrCorrupt, "does not begin with the seSparse magic", false},
		{"version", func(f []byte) []byte { return put64(f, 8, 0x0000000200000002) }, blockmap.ErrUnsupported, "version", false},
		{"grain size", func(f []byte) []byte { return put64(f, 24, 16) }, blockmap.ErrUnsupported, "grain size of 16 sectors", false},
		{"table size", func(f []byte) []byte { return put64(f, 32, 128) }, blockmap.ErrUnsupported, "grain table size", false},
		{"flags", func(f []byte) []byte { return put64(f, 40, 1) }, blockmap.ErrUnsupported, "flags", false},
		{"reserved", func(f []byte) []byte { return put64(f, 56, 1) }, blockmap.ErrUnsupported, "reserved", false},
		{"padding", func(f []byte) []byte { f[300] = 1; return f }, blockmap.ErrUnsupported, "padding", false},
		{"absurd capacity", func(f []byte) []byte { return put64(f, 16, 1<<62) }, blockmap.ErrCorrupt, "capacity of", false},
		{"capacity beyond the directory", func(f []byte) []byte { return put64(f, 16, 1<<40) }, blockmap.ErrCorrupt, "the capacity of 1099511627776 sectors needs", false},
		{"volatile header past the end", func(f []byte) []byte { return put64(f, 80, 1<<50) }, blockmap.ErrCorrupt, "volatile header at sector", false},
		{"volatile magic", func(f []byte) []byte { return put64(f, 512, 7) }, blockmap.ErrCorrupt, "volatile header magic", false},
		{"journal to replay", func(f []byte) []byte { return put64(f, 512+24, 1) }, blockmap.ErrUnsupported, "journal needs replaying", false},
		{"directory past the end", func(f []byte) []byte { return put64(f, 128, 1<<60) }, blockmap.ErrCorrupt, "grain directory", false},
		{"directory too long", func(f []byte) []byte { return put64(f, 136, 1<<62) }, blockmap.ErrCorrupt, "lies outside the extent", false},
		{"directory entry type", func(f []byte) []byte { return put64(f, base.gdAt, 0x2000000000000000) }, blockmap.ErrCorrupt, "neither 0 nor an allocated table", false},
		{"table outside its area", func(f []byte) []byte { return put64(f, base.gdAt, 0x1000000000000000|99) }, blockmap.ErrCorrupt, "outside the grain tables area", false},
		{"tables area past the end", func(f []byte) []byte { return put64(f, 144, 1<<40) }, blockmap.ErrCorrupt, "past the end", false},
		{"tables area huge", func(f []byte) []byte { put64(f, 152, ^uint64(0)); return put64(f, base.gdAt, 0x10000000ffffffff) }, blockmap.ErrCorrupt, "past the end", false},
		{"grain past the end", func(f []byte) []byte { return put64(f, gr0, 0x3000000000000000|0x0000ffffffffffff) }, blockmap.ErrCorrupt, "past the end", true},
		{"grains area past the end", func(f []byte) []byte { return put64(f, 192, ^uint64(0)) }, blockmap.ErrCorrupt, "past the end", true},
		{"grain entry type", func(f []byte) []byte { return put64(f, gr0, 0x4000000000000000) }, blockmap.ErrCorrupt, "of unknown type", true},
		{"unallocated entry with bits", func(f []byte) []byte { return put64(f, gr0, 5) }, blockmap.ErrCorrupt, "unallocated entry with other bits", true},
		{"truncated in a table", func(f []byte) []byte { return f[:firstGT+100] }, blockmap.ErrCorrupt, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.mod(append([]byte(nil), base.file...))
			text := fmt.Sprintf("# Disk DescriptorFile\nCID=%s\nparentCID=ffffffff\ncreateType=\"seSparse\"\nRW %d SESPARSE \"x\"\n", testChildCID, s.capacity)
			m := &memResolver{files: map[string][]byte{"x": f}}
			im, err := Open(strings.NewReader(text), int64(len(text)), Options{Name: "disk1.vmdk", Resolve: m.resolve, AllowParent: true})
			if tc.mapOnly {
				if err != nil {
					t.Fatalf("Open: %v; the damage is in a table, for Map to find", err)
				}
				_, err = im.Map(0)
			}
			if err == nil || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.part) || !strings.Contains(err.Error(), `disk1.vmdk extent "x"`) {
				t.Fatalf("error %v; want %v mentioning %q and the extent", err, tc.want, tc.part)
			}
		})
	}
}

func TestSEGrainIndex(t *testing.T) {
	// The entry keeps the grain number's low 12 bits in bits 48-59 and
	// the rest in bits 0-47.
	for _, n := range []uint64{0, 1, 4095, 4096, 4097, 1<<20 + 3, 1<<60 - 1} {
		e := uint64(seGTEAllocated)<<60 | (n&0xfff)<<48 | n>>12
		if got := seGrainIndex(e); got != n {
			t.Errorf("seGrainIndex(%#x) = %d, want %d", e, got, n)
		}
	}
}
