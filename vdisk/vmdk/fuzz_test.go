package vmdk

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// fuzzExtent is what the fuzz resolver returns for every extent name: a
// tiny valid stream, so descriptor inputs reach the composed mapper.
var fuzzExtent = spec{version: 3, grainSectors: 8, gtes: 4, compressed: true, markers: true, data: pattern(3*testGrain, testGrain, 1)}.build().file

// fuzzSESparse is what the fuzz resolver returns for names containing
// "sesparse": a small seSparse extent with every kind of grain.
var fuzzSESparse = fuzzSESpec().build().file

// fuzzSESpec is a 64 KiB seSparse disk: one grain table, two stored
// grains, a zeroed and an unmapped one. Its file is about 50 KB, mostly
// the one 32 KiB table.
func fuzzSESpec() seSpec {
	return seSpec{capacity: 128, grains: map[int64]seKind{0: seData, 1: seData, 3: seZeroed, 4: seUnmapped, 9: seData}, data: seGrainData}
}

// fuzzCOWD is what the fuzz resolver returns for names containing
// "delta": a small VMDK3 (COWD) extent, as ESX vmfsSparse snapshots hold.
var fuzzCOWD = spec{cowd: true, grainSectors: 1, data: pattern(5*512+100, 512, 2)}.build().file

func fuzzResolve(name string) (io.ReaderAt, int64, error) {
	switch n := strings.ToLower(name); {
	case strings.Contains(n, "sesparse"):
		return bytes.NewReader(fuzzSESparse), int64(len(fuzzSESparse)), nil
	case strings.Contains(n, "delta"):
		return bytes.NewReader(fuzzCOWD), int64(len(fuzzCOWD)), nil
	}
	return bytes.NewReader(fuzzExtent), int64(len(fuzzExtent)), nil
}

// fuzzImage maps and reads im at a few offsets and, for a delta, checks
// it against itself and against a Mapper of another format. Every failure
// must be classified.
func fuzzImage(t *testing.T, im *Image) {
	classified := func(what string, err error) {
		if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
			t.Fatalf("%s: unclassified error: %v", what, err)
		}
	}
	_ = im.Format()
	_ = im.CID()
	if p := im.Parent(); p != nil {
		if err := p.Check(im); err != nil {
			classified("Check", err)
		}
		if err := p.Check(notVMDK{}); err == nil {
			t.Fatal("Check accepted a parent of another format")
		}
	}
	size := im.Size()
	if size <= 0 {
		return
	}
	buf := make([]byte, 2048)
	for _, off := range []int64{0, size / 3, size / 2, size - 1, size - 5000} {
		if off < 0 || off >= size {
			continue
		}
		r, err := im.Map(off)
		if err != nil {
			classified("Map", err)
			continue
		}
		if err := r.Check(off, size); err != nil {
			t.Fatalf("Map(%d) = %+v: %v", off, r, err)
		}
		if _, err := blockmap.ReadAt(im, buf, off); err != nil && err != io.EOF {
			classified("ReadAt", err)
		}
	}
}

// FuzzOpen opens arbitrary bytes and, when they open, maps and reads at a
// few offsets. Every failure must be classified (ErrCorrupt or
// ErrUnsupported), and nothing may panic, hang or allocate wildly.
func FuzzOpen(f *testing.F) {
	// Seeds stay a few KB (512-byte grains, 4-entry tables) so that the
	// fuzzer mutates structure rather than grain payloads.
	tiny := pattern(5*512+100, 512, 2)
	for _, s := range []spec{
		{version: 3, grainSectors: 1, gtes: 4, compressed: true, markers: true, data: tiny},
		{version: 3, grainSectors: 1, gtes: 4, compressed: true, markers: true, atEnd: true, data: tiny},
		{grainSectors: 1, gtes: 4, data: tiny},
		{grainSectors: 1, gtes: 4, compressed: true, data: tiny}, // legacy grains
		{version: 2, grainSectors: 1, gtes: 2, zeroFlag: true, zeroGrains: map[int]bool{1: true}, data: tiny},
	} {
		f.Add(s.build().file)
	}
	f.Add([]byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n" +
		"RW 24 SPARSE \"a-s001.vmdk\"\nRW 8 ZERO\nRW 16 FLAT \"a-f001.vmdk\" 2\nRDONLY 24 VMFSSPARSE \"b.vmdk\"\n"))
	f.Add([]byte("# Disk DescriptorFile\ncreateType=\"vmfs\"\nparentFileNameHint=\"p.vmdk\"\nRW 8 VMFS \"x\"\n"))
	// Deltas: a monolithic one, an ESX vmfsSparse and seSparse snapshot.
	f.Add(spec{version: 2, grainSectors: 1, gtes: 2, zeroFlag: true, zeroGrains: map[int]bool{1: true}, data: tiny, parentHint: "base.vmdk"}.build().file)
	f.Add([]byte("# Disk DescriptorFile\nversion=1\nCID=2468ace0\nparentCID=0badf00d\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"C:\\vm\\base.vmdk\"\n" +
		"# Extent description\nRW 24 VMFSSPARSE \"base-000001-delta.vmdk\"\n"))
	f.Add([]byte("# Disk DescriptorFile\nversion=1\nCID=2468ace0\nparentCID=0badf00d\ncreateType=\"seSparse\"\nparentFileNameHint=\"base.vmdk\"\n" +
		"# Extent description\nRW 128 SESPARSE \"base-000001-sesparse.vmdk\"\nRW 8 SESPARSE \"b-sesparse.vmdk\"\n"))
	f.Add([]byte("ABCD"))

	f.Fuzz(func(t *testing.T, data []byte) {
		Detect(bytes.NewReader(data), int64(len(data)))
		for _, allow := range []bool{false, true} {
			im, err := Open(bytes.NewReader(data), int64(len(data)), Options{Name: "fuzz.vmdk", Resolve: fuzzResolve, AllowParent: allow})
			if err != nil {
				if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
					t.Fatalf("Open: unclassified error: %v", err)
				}
				continue
			}
			if !allow && im.Parent() != nil {
				t.Fatal("a delta opened without AllowParent")
			}
			fuzzImage(t, im)
		}
	})
}

// FuzzSESparse opens arbitrary bytes as the seSparse extent of a delta,
// and maps and reads the disk when they open.
func FuzzSESparse(f *testing.F) {
	f.Add(fuzzSESparse)
	f.Add(seSpec{capacity: 128, data: seGrainData}.build().file) // no tables
	rev := fuzzSESpec()
	rev.reverse = true
	f.Add(rev.build().file)
	const text = "# Disk DescriptorFile\nCID=1\nparentCID=2\ncreateType=\"seSparse\"\nparentFileNameHint=\"p.vmdk\"\nRW 128 SESPARSE \"x\"\n"
	f.Fuzz(func(t *testing.T, data []byte) {
		resolve := func(string) (io.ReaderAt, int64, error) { return bytes.NewReader(data), int64(len(data)), nil }
		im, err := Open(strings.NewReader(text), int64(len(text)), Options{Name: "fuzz.vmdk", Resolve: resolve, AllowParent: true})
		if err != nil {
			if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
				t.Fatalf("Open: unclassified error: %v", err)
			}
			return
		}
		fuzzImage(t, im)
	})
}
