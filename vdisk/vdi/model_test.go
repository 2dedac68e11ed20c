package vdi

import (
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// flatBase is a base image's content computed from its spec alone: stored
// blocks' bytes, zeros elsewhere.
func flatBase(s *spec) []byte {
	return flatChain(s, nil)
}

// TestModel: images qemu does not read (block sizes other than 1 MiB,
// block extra data, version 0.2), checked against the flat model of
// their spec and block by block against their kinds.
func TestModel(t *testing.T) {
	data := testData(6<<20+4096, 5)
	for _, tc := range []struct {
		name   string
		s      spec
		format string
	}{
		{"512-byte blocks", spec{data: data[:64<<10], blockSize: 512, shuffle: 1, kinds: kindsOf(128, "SSFZS")}, "vdi dynamic (512 B blocks)"},
		{"4 KiB blocks", spec{data: data[:1<<20], blockSize: 4096, shuffle: 2, kinds: kindsOf(256, "SFSZ")}, "vdi dynamic (4 KiB blocks)"},
		{"2 MiB blocks, partial last", spec{data: data, blockSize: 2 << 20, kinds: []byte("SZSS")}, "vdi dynamic (2 MiB blocks)"},
		{"64 MiB blocks", spec{data: data[:3<<20], blockSize: 64 << 20, kinds: []byte("S")}, "vdi dynamic (64 MiB blocks)"},
		{"block extra data", spec{data: data, extra: 4096, shuffle: 3, kinds: []byte("SSFZSSS")}, "vdi dynamic (1 MiB blocks)"},
		{"extra data in a fixed image", spec{imageType: typeFixed, data: data, extra: 512, kinds: []byte("SSSSSSS")}, "vdi fixed (1 MiB blocks)"},
		{"version 0.2", spec{version: v0Version, data: data, shuffle: 4, kinds: []byte("SFSZSSF")}, "vdi dynamic (1 MiB blocks, version 0.2)"},
		{"version 1.0", spec{version: 0x00010000, data: data[:2<<20]}, "vdi dynamic (1 MiB blocks)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := build(tc.s)
			tc.s.defaults()
			img, err := openBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			if img.Format() != tc.format || len(img.Warnings()) > 0 {
				t.Errorf("Format() = %q, Warnings() = %q", img.Format(), img.Warnings())
			}
			compareBytes(t, img, flatBase(&tc.s))
			checkChildMap(t, img, &tc.s)
			t.Logf("%s: %d bytes in %d runs", img.Format(), img.Size(), len(img.runs))
		})
	}
}

// kindsOf repeats pattern over n blocks.
func kindsOf(n int, pattern string) []byte {
	return []byte(strings.Repeat(pattern, n/len(pattern)+1)[:n])
}

// TestRuns: contiguous stored blocks are one run, so that a fixed image of
// any size is read in long runs; extra data or a jump breaks the run.
func TestRuns(t *testing.T) {
	data := testData(8<<20, 2)
	fixed, err := openBytes(build(spec{imageType: typeFixed, data: data, kinds: kindsOf(8, "S")}))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := fixed.Map(5<<20 + 3); err != nil || r.Off != 0 || r.Len != 8<<20 || r.Kind != blockmap.Stored {
		t.Errorf("fixed image: Map = %+v, %v; want one stored run over the disk", r, err)
	}
	extra, err := openBytes(build(spec{imageType: typeFixed, data: data, extra: 512, kinds: kindsOf(8, "S")}))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := extra.Map(5<<20 + 3); err != nil || r.Off != 5<<20 || r.Len != 1<<20 {
		t.Errorf("with extra data: Map = %+v, %v; want block 5 alone", r, err)
	}
	holes, err := openBytes(build(spec{data: data, kinds: []byte("SFFFZZZS")}))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		off, start, n int64
		kind          blockmap.Kind
	}{{2 << 20, 1 << 20, 3 << 20, blockmap.Hole}, {6<<20 + 1, 4 << 20, 3 << 20, blockmap.Zero}, {7 << 20, 7 << 20, 1 << 20, blockmap.Stored}} {
		if r, err := holes.Map(w.off); err != nil || r.Off != w.start || r.Len != w.n || r.Kind != w.kind {
			t.Errorf("Map(%d) = %+v, %v; want %v [%d, +%d)", w.off, r, err, w.kind, w.start, w.n)
		}
	}
}
