package vhd

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// fuzzSeeds are tiny valid and damaged images covering every path of Open.
func fuzzSeeds() [][]byte {
	// Small seeds keep the minimization of each new input quick.
	data := make([]byte, 2048)
	for i := range 512 {
		data[i] = byte(i*31 + 7)
	}
	data[1500] = 9
	dyn := build(spec{data: data, diskType: diskDynamic, blockSize: 512, shuffle: 3})
	vpc := build(spec{data: data[:1024], diskType: diskDynamic, blockSize: 1024, creator: "vpc ", cyls: 1, heads: 1, spt: 1})
	fixedDisk := build(spec{data: data[:1024], diskType: diskFixed, creator: "qemu", cyls: 1, heads: 2, spt: 1})
	short := build(spec{data: data[:512], diskType: diskFixed, short: true})
	diff := build(spec{diskType: diskDiffer, blockSize: 512, parent: "parent.vhd",
		locators: []locator{{"W2ku", utf16le(`C:\parent.vhd`)}, {"MacX", []byte("file:///parent.vhd")}}})

	badSum := append([]byte(nil), dyn...)
	badSum[len(badSum)-footerSize+24] ^= 1
	noTail := dyn[:len(dyn)-footerSize]
	badBAT := append([]byte(nil), dyn...)
	be.PutUint32(badBAT[hBAT+4:], 0x00FFFFFF)
	return [][]byte{dyn, vpc, fixedDisk, short, diff, badSum, noTail, badBAT, dyn[:hBAT+8], []byte(cookieFooter)}
}

func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		Detect(bytes.NewReader(b), int64(len(b)))
		img, err := openBytes(b)
		if err != nil {
			if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
				t.Fatalf("Open error wraps no sentinel: %v", err)
			}
			return
		}
		_, _ = img.Format(), img.Warnings()
		size := img.Size()
		if size < 0 || size > maxSectors*sectorSize {
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
			if r.Kind == blockmap.Stored && !img.fixed && (r.Phys < 0 || r.Phys+r.Len > int64(len(b))) {
				t.Fatalf("Map(%d) = %+v reads outside the %d-byte image", off, r, len(b))
			}
			if _, err := blockmap.ReadAt(img, buf, off); err != nil && !errors.Is(err, blockmap.ErrCorrupt) && err != io.EOF {
				t.Fatalf("ReadAt(%d): %v", off, err)
			}
		}
	})
}
