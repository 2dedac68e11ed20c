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

	// Differencing children: blocks absent, fully and partly present,
	// with locators; one with a block whose bitmap lies on the header.
	_, _, c := diffCase(512, 6, 11)
	c.locators = []locator{{"W2ru", utf16le(`.\p.vhd`)}, {"MacX", []byte("file:///p.vhd")}}
	child := buildChild(c)
	_, _, c2 := diffCase(4096, 3, 12)
	badChild := buildChild(c2)
	be.PutUint32(badChild[hBAT:], 1)

	badSum := append([]byte(nil), dyn...)
	badSum[len(badSum)-footerSize+24] ^= 1
	noTail := dyn[:len(dyn)-footerSize]
	badBAT := append([]byte(nil), dyn...)
	be.PutUint32(badBAT[hBAT+4:], 0x00FFFFFF)
	return [][]byte{dyn, vpc, fixedDisk, short, diff, child, badChild, badSum, noTail, badBAT, dyn[:hBAT+8], []byte(cookieFooter)}
}

func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		Detect(bytes.NewReader(b), int64(len(b)))
		exercise(t, b, false)
		exercise(t, b, true)
	})
}

// exercise opens b, as a child when allowParent, and maps and reads it at
// a few offsets; every error must carry a sentinel.
func exercise(t *testing.T, b []byte, allowParent bool) {
	img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "fuzz.vhd", AllowParent: allowParent})
	if err != nil {
		if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
			t.Fatalf("Open error wraps no sentinel: %v", err)
		}
		return
	}
	_, _ = img.Format(), img.Warnings()
	if p := img.Parent(); p != nil {
		if !allowParent {
			t.Fatal("a child opened without AllowParent")
		}
		for _, n := range p.Names {
			if len(n) > 2*maxLocatorBytes {
				t.Fatalf("name of %d bytes", len(n))
			}
		}
		_ = p.Check(img)
	}
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
}
