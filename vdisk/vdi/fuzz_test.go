package vdi

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// fuzzSeeds are tiny valid and damaged images covering every path of Open:
// both header versions, every image type, extra data, zero blocks, shared
// and out-of-file blocks.
func fuzzSeeds() [][]byte {
	// Small seeds keep the minimization of each new input quick.
	data := make([]byte, 3000)
	for i := range 1024 {
		data[i] = byte(i*31 + 7)
	}
	data[2900] = 9
	dyn := build(spec{data: data, blockSize: 512, shuffle: 3, kinds: []byte("SSZFFS")})
	fixedImg := build(spec{imageType: typeFixed, data: data[:1024], blockSize: 512, cbHeader: v1HeaderSize})
	extra := build(spec{data: data[:2048], blockSize: 512, extra: 512, kinds: []byte("SFSZ")})
	diff := build(spec{imageType: typeDiff, data: data[:2048], blockSize: 512, kinds: []byte("FSZF"), linkage: UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}})
	v0 := build(spec{version: v0Version, data: data[:1536], blockSize: 512, kinds: []byte("SFS")})
	v0diff := build(spec{version: v0Version, imageType: typeDiff, data: data[:1024], blockSize: 512, kinds: []byte("ZS"), linkage: UUID{9}})

	shared := bytes.Clone(dyn)
	le.PutUint32(shared[hMap+4*5:], 0)
	past := bytes.Clone(dyn)
	le.PutUint32(past[hMap+4:], 0x00FFFFFF)
	odd := bytes.Clone(dyn)
	le.PutUint64(odd[hDiskSize:], 2999)
	return [][]byte{dyn, fixedImg, extra, diff, v0, v0diff, shared, past, odd, dyn[:len(dyn)-100], dyn[:hMap+8], dyn[:preHeaderSize]}
}

func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(fuzzOne)
}

// fuzzOne opens b and reads through Map at a few offsets.
func fuzzOne(t *testing.T, b []byte, allowParent bool) {
	{
		Detect(bytes.NewReader(b), int64(len(b)))
		img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "fuzz.vdi", AllowParent: allowParent})
		if err != nil {
			if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
				t.Fatalf("Open error wraps no sentinel: %v", err)
			}
			return
		}
		_, _ = img.Format(), img.Warnings()
		if p := img.Parent(); p != nil {
			if len(p.Names) != 0 || p.Check == nil || !allowParent {
				t.Fatalf("Parent() = %+v", p)
			}
			// A differencing image is never its own parent: its creation
			// UUID could equal its linkage only in a forged header.
			if err := p.Check(img); err != nil && !errors.Is(err, ErrWrongParent) {
				t.Fatalf("Check(itself): %v", err)
			}
		}
		size := img.Size()
		if size < 0 {
			t.Fatalf("Size() = %d", size)
		}
		if size == 0 {
			return
		}
		buf := make([]byte, 3000)
		for _, off := range []int64{0, 1, 511, 512, size / 3, size / 2, size - 1000, size - 1} {
			if off < 0 || off >= size {
				continue
			}
			r, err := img.Map(off)
			if err != nil {
				if !errors.Is(err, blockmap.ErrCorrupt) {
					t.Fatalf("Map(%d) error wraps no sentinel: %v", off, err)
				}
				continue
			}
			if err := r.Check(off, size); err != nil {
				t.Fatalf("Map(%d) = %+v: %v", off, r, err)
			}
			if r.Kind == blockmap.Stored {
				// The part of the run a read can touch lies in the image.
				if r.Phys < 0 || r.Phys+r.Len > int64(len(b)) {
					t.Fatalf("Map(%d) = %+v reads outside the %d-byte image", off, r, len(b))
				}
			}
			if _, err := blockmap.ReadAt(img, buf, off); err != nil && !errors.Is(err, blockmap.ErrCorrupt) && err != io.EOF {
				t.Fatalf("ReadAt(%d): %v", off, err)
			}
		}
	}
}
