package vmdk

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// fuzzExtent is what the fuzz resolver returns for every extent name: a
// tiny valid stream, so descriptor inputs reach the composed mapper.
var fuzzExtent = spec{version: 3, grainSectors: 8, gtes: 4, compressed: true, markers: true, data: pattern(3*testGrain, testGrain, 1)}.build().file

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
	f.Add([]byte("ABCD"))

	f.Fuzz(func(t *testing.T, data []byte) {
		resolve := func(string) (io.ReaderAt, int64, error) {
			return bytes.NewReader(fuzzExtent), int64(len(fuzzExtent)), nil
		}
		classified := func(what string, err error) {
			if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
				t.Fatalf("%s: unclassified error: %v", what, err)
			}
		}
		Detect(bytes.NewReader(data), int64(len(data)))
		im, err := Open(bytes.NewReader(data), int64(len(data)), Options{Name: "fuzz.vmdk", Resolve: resolve})
		if err != nil {
			classified("Open", err)
			return
		}
		_ = im.Format()
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
	})
}
