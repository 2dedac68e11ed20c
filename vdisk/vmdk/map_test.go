package vmdk

import (
	"bytes"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// TestMapRuns checks the runs Map returns on a stream with holes, zeroed
// grains and compressed grains: long Holes, one Compressed run per grain
// with its unit, and no allocation once the grain table is cached.
func TestMapRuns(t *testing.T) {
	// 40 grains of 4 KiB in tables of 4: grains 8-19 empty (three whole
	// tables), grain 30 zeroed, the rest data.
	data := pattern(40*testGrain, testGrain, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)
	b := spec{version: 3, grainSectors: 8, gtes: 4, compressed: true, markers: true, zeroFlag: true,
		zeroGrains: map[int]bool{30: true}, data: data}.build()
	// Drop the three empty tables from the directory, as stream writers do.
	for _, ti := range []int64{2, 3, 4} {
		put32(b.file, b.gdAt+4*ti, 0)
	}
	im, err := Open(bytes.NewReader(b.file), int64(len(b.file)), Options{Name: "runs.vmdk"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		off, runOff, runLen int64
		kind                blockmap.Kind
	}{
		{0, 0, testGrain, blockmap.Compressed},
		{testGrain + 5, testGrain, testGrain, blockmap.Compressed},
		{8*testGrain + 1, 8 * testGrain, 12 * testGrain, blockmap.Hole}, // three missing tables at once
		{19 * testGrain, 16 * testGrain, 4 * testGrain, blockmap.Hole},  // from its table's start
		{30*testGrain + 7, 30 * testGrain, testGrain, blockmap.Zero},
		{40*testGrain - 1, 39 * testGrain, testGrain, blockmap.Compressed},
	} {
		r, err := im.Map(tc.off)
		if err != nil {
			t.Fatal(err)
		}
		if r.Off != tc.runOff || r.Len != tc.runLen || r.Kind != tc.kind || r.Check(tc.off, im.Size()) != nil {
			t.Errorf("Map(%d) = %v run [%d, +%d); want %v [%d, +%d)", tc.off, r.Kind, r.Off, r.Len, tc.kind, tc.runOff, tc.runLen)
		}
		if r.Kind == blockmap.Compressed {
			u := r.Unit
			if u.Off != r.Off || u.Size != testGrain || u.ID != u.Phys || u.Phys != b.grainAt[r.Off/testGrain] || u.Span <= 12 {
				t.Errorf("Map(%d) unit %+v; want the grain's record", tc.off, u)
			}
		}
	}
	got := make([]byte, im.Size())
	if _, err := blockmap.ReadAt(im, got, 0); err != nil {
		t.Fatal(err)
	}
	clear(data[30*testGrain : 31*testGrain])
	if !bytes.Equal(got, data) {
		t.Fatal("decoded disk differs")
	}
	if n := testing.AllocsPerRun(100, func() { im.Map(33*testGrain + 9) }); n != 0 {
		t.Errorf("Map allocates %v times per call with its table cached", n)
	}
}
