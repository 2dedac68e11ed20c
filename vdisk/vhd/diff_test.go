package vhd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// This file builds differencing VHDs from the specification (no tool at
// hand writes them: qemu-img 7.2 cannot), reads them as children, and
// checks them against a flat model of the chain computed here: a sector is
// the child's where its block is allocated and its bitmap bit is set, and
// the parent's everywhere else.

// child describes a differencing disk to build.
type child struct {
	size      int      // virtual size, a multiple of 512
	blockSize int      // a power of two >= 512
	present   [][]bool // per block: nil is unallocated, else one bool per sector of the block
	own       []byte   // the child's bytes for present sectors (size bytes)
	parentID  [16]byte
	uniqueID  [16]byte
	name      string // the header's Unicode parent name
	locators  []locator
	timestamp uint32
}

// buildChild writes c as a VHD: footer copy, dynamic header at 512, BAT
// at 1536, locator data, then each allocated block (bitmap, data) in
// reverse virtual order, then the footer. Sectors whose bit is clear are
// filled with 0xEE, which a correct reader never returns.
func buildChild(c child) []byte {
	bs := c.blockSize
	n := (c.size + bs - 1) / bs
	batBytes := (4*n + 511) / 512 * 512
	bitmap := ((bs/512+7)/8 + 511) / 512 * 512
	const batOff = 1536

	s := spec{data: make([]byte, c.size), diskType: diskDiffer, creator: "win "}
	footer := s.footer(512)
	copy(footer[68:84], c.uniqueID[:])
	be.PutUint32(footer[checksumOff:], checksum(footer, checksumOff))

	var locData []byte
	locStart := batOff + batBytes
	for _, l := range c.locators {
		locData = append(locData, l.data...)
		locData = append(locData, make([]byte, (512-len(l.data)%512)%512)...)
	}
	out := make([]byte, locStart+len(locData))
	copy(out, footer)
	h := out[512 : 512+dynHeaderSize]
	copy(h, cookieDynamic)
	be.PutUint64(h[8:], ^uint64(0))
	be.PutUint64(h[16:], batOff)
	be.PutUint32(h[24:], formatVersion)
	be.PutUint32(h[28:], uint32(n))
	be.PutUint32(h[32:], uint32(bs))
	copy(h[40:56], c.parentID[:])
	be.PutUint32(h[56:], c.timestamp)
	for i, u := range utf16.Encode([]rune(c.name)) {
		be.PutUint16(h[parentNameOff+2*i:], u)
	}
	pos := locStart
	for i, l := range c.locators {
		e := h[locatorOff+i*locatorSize:]
		copy(e, l.code)
		space := (len(l.data) + 511) / 512 * 512
		be.PutUint32(e[4:], uint32(space))
		be.PutUint32(e[8:], uint32(len(l.data)))
		be.PutUint64(e[16:], uint64(pos))
		pos += space
	}
	be.PutUint32(h[dynChecksumOff:], checksum(h, dynChecksumOff))
	copy(out[locStart:], locData)

	for i := range batBytes {
		out[batOff+i] = 0xff
	}
	for b := n - 1; b >= 0; b-- {
		p := c.present[b]
		if p == nil {
			continue
		}
		be.PutUint32(out[batOff+4*b:], uint32(len(out)/512))
		bm := make([]byte, bitmap)
		blk := bytes.Repeat([]byte{0xEE}, bs)
		for i, set := range p {
			// Bits past the end of the disk are set too where the pattern
			// says so: a reader must not let a run cross the end.
			if v := b*bs + i*512; set {
				bm[i/8] |= 0x80 >> (i % 8)
				if v < c.size {
					copy(blk[i*512:], c.own[v:v+512])
				}
			}
		}
		out = append(append(out, bm...), blk...)
	}
	return append(out, footer...)
}

// model is the flat view of a chain: the bytes, and per sector whether the
// child holds it.
func (c child) model(parent []byte) (want []byte, mine []bool) {
	want = slices.Clone(parent[:c.size])
	mine = make([]bool, c.size/512)
	for s := range mine {
		b, i := s*512/c.blockSize, (s*512%c.blockSize)/512
		if p := c.present[b]; p != nil && p[i] {
			mine[s] = true
			copy(want[s*512:], c.own[s*512:s*512+512])
		}
	}
	return want, mine
}

// patterned returns n sector bits made of runs of random lengths (some
// long enough to cover whole bitmap words), so that runs start and end at
// every kind of boundary.
func patterned(rng *rand.Rand, n int) []bool {
	p := make([]bool, n)
	set := rng.Intn(2) == 0
	for i := 0; i < n; {
		l := 1 + rng.Intn(3)
		if rng.Intn(4) == 0 {
			l = 1 + rng.Intn(200)
		}
		for j := i; j < min(n, i+l); j++ {
			p[j] = set
		}
		i += l
		set = !set
	}
	return p
}

func filled(n int, v bool) []bool {
	p := make([]bool, n)
	for i := range p {
		p[i] = v
	}
	return p
}

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

var (
	testParentID = [16]byte([]byte("0123456789abcdef")) // what spec.footer writes
	testChildID  = [16]byte{0xc1, 0x1d, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
)

// diffCase builds a parent (a dynamic VHD holding random bytes) and a child
// of it with blocks unallocated, allocated with an empty bitmap, fully
// present, and partly present in patterns, the last block short.
func diffCase(bs, blocks int, seed int64) (parentImg []byte, parent []byte, c child) {
	rng := rand.New(rand.NewSource(seed))
	size := blocks*bs - bs/2
	if bs == 512 {
		size = blocks * bs
	}
	parent = randomBytes(seed, size)
	parentImg = build(spec{data: parent, diskType: diskDynamic, blockSize: uint32(bs)})
	c = child{size: size, blockSize: bs, own: randomBytes(seed+1, size), parentID: testParentID, uniqueID: testChildID,
		name: "parent.vhd", present: make([][]bool, blocks)}
	spb := bs / 512
	for b := range blocks {
		switch b % 5 {
		case 0:
			c.present[b] = patterned(rng, spb)
		case 1: // unallocated: the parent shows through
		case 2:
			c.present[b] = filled(spb, true)
		case 3:
			c.present[b] = filled(spb, false) // allocated, nothing present
		case 4:
			c.present[b] = patterned(rng, spb)
		}
	}
	return parentImg, parent, c
}

func openChild(t testing.TB, b []byte) *Image {
	t.Helper()
	img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "child.vhd", AllowParent: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return img
}

// readChain reads [off, off+len(p)) of child over parent as package vdisk
// will: the child's Hole runs from the parent, the rest from the child.
func readChain(child, parent blockmap.Mapper, p []byte, off int64) error {
	for done := 0; done < len(p); {
		pos := off + int64(done)
		r, err := child.Map(pos)
		if err != nil {
			return err
		}
		if err := r.Check(pos, child.Size()); err != nil {
			return err
		}
		n := int(min(r.End()-pos, int64(len(p)-done)))
		dst := p[done : done+n]
		switch r.Kind {
		case blockmap.Hole:
			if _, err := blockmap.ReadAt(parent, dst, pos); err != nil && err != io.EOF {
				return err
			}
		case blockmap.Zero:
			clear(dst)
		case blockmap.Stored:
			if err := blockmap.ReadStored(context.Background(), r.Src, dst, r.Phys+(pos-r.Off)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("Map(%d) returned a %v run", pos, r.Kind)
		}
		done += n
	}
	return nil
}

// checkRuns walks the child's map and checks every run against the model:
// its kind matches every sector in it, and inside an allocated block a run
// is maximal (the sectors on either side, in the same block, differ).
func checkRuns(t *testing.T, img *Image, c child, mine []bool) (runs int) {
	t.Helper()
	for pos := int64(0); pos < img.Size(); {
		r, err := img.Map(pos)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Check(pos, img.Size()); err != nil || r.Off != pos {
			t.Fatalf("Map(%d) = %+v (%v), want a run starting there", pos, r, err)
		}
		if r.Off%512 != 0 || r.Len%512 != 0 {
			t.Fatalf("Map(%d) = %+v is not whole sectors", pos, r)
		}
		first, last := int(r.Off/512), int(r.End()/512)-1
		for s := first; s <= last; s++ {
			if mine[s] != (r.Kind == blockmap.Stored) {
				t.Fatalf("Map(%d) = %v [%d, %d), but sector %d is the child's: %v", pos, r.Kind, r.Off, r.End(), s, mine[s])
			}
		}
		spb := c.blockSize / 512
		if b := first / spb; c.present[b] != nil {
			if first%spb != 0 && mine[first-1] == mine[first] {
				t.Fatalf("Map(%d) = [%d, %d) is not maximal: sector %d before it is alike", pos, r.Off, r.End(), first-1)
			}
			if (last+1)%spb != 0 && last+1 < len(mine) && mine[last+1] == mine[last] {
				t.Fatalf("Map(%d) = [%d, %d) is not maximal: sector %d after it is alike", pos, r.Off, r.End(), last+1)
			}
		}
		// Map from the middle of the run returns the same run.
		mid := r.Off + (r.Len/1024)*512
		if r2, err := img.Map(mid); err != nil || r2.Off != r.Off || r2.Len != r.Len || r2.Kind != r.Kind {
			t.Fatalf("Map(%d) = %+v, %v; Map(%d) gave [%d, %d)", mid, r2, err, pos, r.Off, r.End())
		}
		runs++
		pos = r.End()
	}
	return runs
}

// TestDifferencing reads built children over their parents, for several
// block sizes, against the flat model of the chain.
func TestDifferencing(t *testing.T) {
	for _, tc := range []struct{ bs, blocks int }{{512, 40}, {4096, 25}, {64 << 10, 10}, {2 << 20, 4}} {
		t.Run(byteSize(int64(tc.bs)), func(t *testing.T) {
			pb, parent, c := diffCase(tc.bs, tc.blocks, int64(tc.bs))
			want, mine := c.model(parent)
			b := buildChild(c)
			img := openChild(t, b)
			pimg, err := openBytes(pb)
			if err != nil {
				t.Fatal(err)
			}
			if img.Size() != int64(c.size) {
				t.Fatalf("Size() = %d, want %d", img.Size(), c.size)
			}
			if f := "vhd differencing (" + byteSize(int64(tc.bs)) + " blocks)"; img.Format() != f {
				t.Errorf("Format() = %q, want %q", img.Format(), f)
			}
			if w := img.Warnings(); len(w) != 0 {
				t.Errorf("unexpected warnings %q", w)
			}
			p := img.Parent()
			if p == nil || !slices.Equal(p.Names, []string{"parent.vhd"}) || p.Format != "" {
				t.Fatalf("Parent() = %+v", p)
			}
			if err := p.Check(pimg); err != nil {
				t.Fatalf("Check(the parent): %v", err)
			}
			if pimg.Parent() != nil {
				t.Error("a dynamic disk has a Parent()")
			}
			runs := checkRuns(t, img, c, mine)

			got := make([]byte, c.size)
			if err := readChain(img, pimg, got, 0); err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("chain read differs from the model at %d", i)
			}
			rng := rand.New(rand.NewSource(9))
			for range 200 {
				off := rng.Int63n(int64(c.size))
				n := 1 + rng.Int63n(min(int64(c.size)-off, 3*int64(tc.bs), 256<<10))
				if err := readChain(img, pimg, got[:n], off); err != nil {
					t.Fatal(err)
				}
				if i := firstDiff(got[:n], want[off:off+n]); i >= 0 {
					t.Fatalf("chain read of %d at %d differs from the model at +%d", n, off, i)
				}
			}
			t.Logf("%d-byte disk of %d-byte blocks: %d runs for %d sectors", c.size, tc.bs, runs, len(mine))
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestDifferencingQemu: qemu-img 7.2 opens a differencing VHD as if it
// were dynamic (it reads no parent and ignores the bitmaps), so its
// reading of an allocated block is the block's stored bytes. Every Stored
// run must read what qemu reads there, and sit where qemu-img map says the
// block's data is.
func TestDifferencingQemu(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	_, _, c := diffCase(64<<10, 12, 77)
	b := buildChild(c)
	dir := t.TempDir()
	path := testutil.WriteFile(t, filepath.Join(dir, "child.vhd"), b)
	qemu := testutil.MapFile(t, testutil.RawOracle(t, dir, path, "vpc"))
	out, err := exec.Command("qemu-img", "map", "-f", "vpc", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img map: %v", err)
	}
	var qmap []struct {
		Start, Length, Offset int64
		Data                  bool
	}
	if err := json.Unmarshal(out, &qmap); err != nil {
		t.Fatal(err)
	}
	img := openChild(t, b)
	if int64(len(qemu)) != img.Size() {
		t.Fatalf("qemu-img reads %d bytes, Size() = %d", len(qemu), img.Size())
	}
	var stored int64
	for pos := int64(0); pos < img.Size(); {
		r, err := img.Map(pos)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind == blockmap.Stored {
			buf := make([]byte, r.Len)
			if _, err := blockmap.ReadAt(img, buf, r.Off); err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(buf, qemu[r.Off:r.End()]); i >= 0 {
				t.Fatalf("stored run [%d, %d) differs from qemu-img at +%d", r.Off, r.End(), i)
			}
			i := slices.IndexFunc(qmap, func(m struct {
				Start, Length, Offset int64
				Data                  bool
			}) bool {
				return m.Start <= r.Off && r.End() <= m.Start+m.Length
			})
			if i < 0 || !qmap[i].Data || qmap[i].Offset+(r.Off-qmap[i].Start) != r.Phys {
				t.Fatalf("stored run [%d, %d) at %d is not where qemu-img map puts it (%+v)", r.Off, r.End(), r.Phys, qmap)
			}
			stored += r.Len
		}
		pos = r.End()
	}
	if stored == 0 {
		t.Fatal("no stored run to compare")
	}
	t.Logf("%d stored bytes agree with qemu-img convert and map", stored)
}

// TestDifferencingNames: locators are read in rank order (relative
// Windows path, absolute, deprecated forms, Mac OS X URL), then the
// Unicode name, each as stored; hostile locators are skipped with a
// warning.
func TestDifferencingNames(t *testing.T) {
	c := child{size: 4096, blockSize: 4096, present: [][]bool{nil}, own: make([]byte, 4096), parentID: testParentID,
		name: "base-disk.vhd", timestamp: 86400,
		locators: []locator{
			{"MacX", []byte("file://localhost/Users/x/base%20disk.vhd")},
			{"W2ku", utf16le(`C:\VMs\base-disk.vhd`)},
			{"Mac ", []byte{0, 1, 2, 3}},
			{"W2ru", utf16le(`.\base-disk.vhd`)},
			{"Wi2k", []byte(`C:\VMs\BASE-D~1.VHD`)},
			{"W2ru", utf16le("x")}, // made hostile below
			{"W2ku", utf16le("y")}, // made hostile below
		}}
	b := buildChild(c)
	loc := b[hHeader+locatorOff:]
	be.PutUint32(loc[5*locatorSize+8:], 0xFFFFFFF0)      // absurd length
	be.PutUint64(loc[6*locatorSize+16:], ^uint64(0)-100) // offset past the end
	be.PutUint32(b[hHeader+dynChecksumOff:], checksum(b[hHeader:hHeader+dynHeaderSize], dynChecksumOff))
	img, err, alloc := openMeasuredOpts(b, Options{Name: "c.vhd", AllowParent: true})
	if err != nil {
		t.Fatal(err)
	}
	if alloc > 256<<10 {
		t.Errorf("Open allocated %d bytes", alloc)
	}
	want := []string{`.\base-disk.vhd`, `C:\VMs\base-disk.vhd`, `C:\VMs\BASE-D~1.VHD`, "file://localhost/Users/x/base%20disk.vhd", "base-disk.vhd"}
	if got := img.Parent().Names; !slices.Equal(got, want) {
		t.Errorf("Names = %q\nwant    %q", got, want)
	}
	w := strings.Join(img.Warnings(), "\n")
	for _, s := range []string{`platform code "Mac "`, "parent locator 5", "parent locator 6", "2000-01-02T00:00:00Z", "not checked"} {
		if !strings.Contains(w, s) {
			t.Errorf("warnings %q lack %q", w, s)
		}
	}
	t.Logf("warnings: %s", w)

	// A child naming nothing opens, with a warning: vdisk reports it.
	c.name, c.locators, c.timestamp = "", nil, 0
	img = openChild(t, buildChild(c))
	if len(img.Parent().Names) != 0 || !strings.Contains(strings.Join(img.Warnings(), "\n"), "names no parent") {
		t.Errorf("Names %q, warnings %q", img.Parent().Names, img.Warnings())
	}
}

// TestDifferencingCheck: Check accepts the parent the child was written
// against and refuses, naming both identities, a VHD with another Unique
// Id and an image of another kind.
func TestDifferencingCheck(t *testing.T) {
	pb, _, c := diffCase(4096, 5, 3)
	img := openChild(t, buildChild(c))
	other := slices.Clone(pb)
	copy(other[68:84], "fedcba9876543210")
	copy(other[len(other)-footerSize+68:], "fedcba9876543210")
	fixSums(other)
	o, err := openBytes(other)
	if err != nil {
		t.Fatal(err)
	}
	if o.UniqueID() != [16]byte([]byte("fedcba9876543210")) {
		t.Fatalf("UniqueID() = %x", o.UniqueID())
	}
	err = img.Parent().Check(o)
	if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), uuidString(testParentID)) || !strings.Contains(err.Error(), uuidString(o.UniqueID())) {
		t.Fatalf("Check(another VHD) = %v, want ErrCorrupt naming both IDs", err)
	}
	t.Log(err)
	err = img.Parent().Check(fakeMapper{})
	if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), "fake raw disk") {
		t.Fatalf("Check(another format) = %v", err)
	}
	t.Log(err)
	// The child is itself a VHD with a Unique Id: a grandchild names it.
	if img.UniqueID() != testChildID {
		t.Errorf("child UniqueID() = %x", img.UniqueID())
	}
	c.parentID = testChildID
	if err := openChild(t, buildChild(c)).Parent().Check(img); err != nil {
		t.Errorf("Check(the child as parent): %v", err)
	}
}

type fakeMapper struct{}

func (fakeMapper) Size() int64                         { return 1 << 20 }
func (fakeMapper) Map(off int64) (blockmap.Run, error) { return blockmap.Run{Len: 1 << 20}, nil }
func (fakeMapper) Format() string                      { return "fake raw disk" }

// TestDifferencingRefused: without AllowParent a child is refused as it
// always was; a dynamic or fixed disk opened with it has no parent.
func TestDifferencingRefused(t *testing.T) {
	_, _, c := diffCase(4096, 5, 4)
	_, err := openBytes(buildChild(c))
	if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), `parent "parent.vhd"`) {
		t.Fatalf("Open without AllowParent = %v", err)
	}
	for _, b := range [][]byte{hostileBase(), build(spec{data: hostileData(), diskType: diskFixed})} {
		img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "base.vhd", AllowParent: true})
		if err != nil {
			t.Fatal(err)
		}
		if img.Parent() != nil {
			t.Errorf("%s: Parent() = %+v", img.Format(), img.Parent())
		}
	}
}

// TestDifferencingHostile: bitmaps and blocks placed where they must not
// be fail the reads of their block only, and Open stays cheap.
func TestDifferencingHostile(t *testing.T) {
	_, _, c := diffCase(4096, 10, 5)
	base := buildChild(c)
	entry := func(b int) int { return hBAT + 4*b }
	for _, tc := range []struct {
		name  string
		edit  func([]byte) []byte
		block int64
		msg   string
	}{
		{"bitmap on the footer copy", setU32(entry(0), 0), 0, "on top of the footer copy"},
		{"bitmap on the dynamic header", setU32(entry(2), 1), 2, "on top of the dynamic header"},
		{"bitmap on the BAT", setU32(entry(3), hBAT/512), 3, "on top of the BAT"},
		{"block past the end", setU32(entry(4), 0x7FFFFFFF), 4, "past the end of the image data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(slices.Clone(base))
			img, err, alloc := openMeasuredOpts(b, Options{Name: "test.vhd", AllowParent: true})
			if err != nil {
				t.Fatal(err)
			}
			if alloc > 256<<10 {
				t.Errorf("Open allocated %d bytes", alloc)
			}
			if !strings.Contains(strings.Join(img.Warnings(), "\n"), "cannot be read") {
				t.Errorf("warnings %q", img.Warnings())
			}
			_, err = img.Map(tc.block*4096 + 700)
			if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Map = %v, want ErrCorrupt containing %q", err, tc.msg)
			}
			t.Log(err)
		})
	}
	// A source that fails when the bitmap is read.
	blk := int64(be.Uint32(base[entry(0):])) * 512
	img, err := Open(failAt{base, blk}, int64(len(base)), Options{Name: "x.vhd", AllowParent: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.Map(100); !errors.Is(err, errFire) || !strings.Contains(err.Error(), "sector bitmap") {
		t.Fatalf("Map with a failing bitmap read = %v", err)
	}
}

// openMeasuredOpts opens b with o and reports the bytes Open allocated.
func openMeasuredOpts(b []byte, o Options) (*Image, error, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	img, err := Open(bytes.NewReader(b), int64(len(b)), o)
	runtime.ReadMemStats(&after)
	return img, err, after.TotalAlloc - before.TotalAlloc
}

// TestBitRun checks the word-at-a-time run search against a bit-by-bit
// one, on random bitmaps made of runs.
func TestBitRun(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for range 300 {
		nb := 8 * (1 + rng.Intn(40))
		n := 1 + rng.Intn(8*nb)
		bits := patterned(rng, 8*nb)
		bm := make([]byte, nb)
		for i, b := range bits {
			if b {
				bm[i/8] |= 0x80 >> (i % 8)
			}
		}
		for range 20 {
			i := rng.Intn(n)
			lo, hi, set := bitRun(bm, i, n)
			wlo, whi := i, i
			for wlo > 0 && bits[wlo-1] == bits[i] {
				wlo--
			}
			for whi < n && bits[whi] == bits[i] {
				whi++
			}
			if lo != wlo || hi != whi || set != bits[i] {
				t.Fatalf("bitRun(%x, %d, %d) = %d, %d, %v; want %d, %d, %v", bm, i, n, lo, hi, set, wlo, whi, bits[i])
			}
		}
	}
}

// TestBitmapCache: a walk over a block reads its bitmap once; Map does not
// allocate once the bitmap is cached; with the cache off every Map reads.
func TestBitmapCache(t *testing.T) {
	_, _, c := diffCase(64<<10, 5, 6)
	b := buildChild(c)
	cr := &countingReader{r: bytes.NewReader(b)}
	img, err := Open(cr, int64(len(b)), Options{Name: "c.vhd", AllowParent: true})
	if err != nil {
		t.Fatal(err)
	}
	_, mine := c.model(make([]byte, c.size))
	cr.n = 0
	runs := checkRuns(t, img, c, mine)
	if cr.n != 4 { // blocks 0, 2, 3, 4 are allocated
		t.Errorf("%d runs read %d bitmaps, want 4", runs, cr.n)
	}
	if n := testing.AllocsPerRun(100, func() { img.Map(1000) }); n != 0 {
		t.Errorf("Map allocates %v times per call", n)
	}
	saved := bitmapCacheBytes
	bitmapCacheBytes = 0
	img, err = Open(cr, int64(len(b)), Options{Name: "c.vhd", AllowParent: true})
	bitmapCacheBytes = saved
	if err != nil {
		t.Fatal(err)
	}
	cr.n = 0
	checkRuns(t, img, c, mine)
	if cr.n < int64(runs/2) {
		t.Errorf("without the cache, %d runs read %d bitmaps", runs, cr.n)
	}
}

type countingReader struct {
	r io.ReaderAt
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.n++
	return c.r.ReadAt(p, off)
}

// BenchmarkChildSequential reads a 64 MiB child of 2 MiB blocks whose
// bitmaps alternate in runs of 8 sectors, from a file, the way vdisk reads
// (one Map per run), with and without the bitmap cache.
func BenchmarkChildSequential(b *testing.B) {
	const bs, blocks = 2 << 20, 32
	c := child{size: bs * blocks, blockSize: bs, present: make([][]bool, blocks), own: make([]byte, bs*blocks), parentID: testParentID}
	for i := range blocks {
		p := make([]bool, bs/512)
		for s := range p {
			p[s] = s/8%2 == 0
		}
		c.present[i] = p
	}
	path := filepath.Join(b.TempDir(), "child.vhd")
	if err := os.WriteFile(path, buildChild(c), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	for _, cache := range []bool{true, false} {
		b.Run(fmt.Sprintf("cache=%v", cache), func(b *testing.B) {
			saved := bitmapCacheBytes
			if !cache {
				bitmapCacheBytes = 0
			}
			img, err := Open(f, st.Size(), Options{Name: "c.vhd", AllowParent: true})
			bitmapCacheBytes = saved
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 128<<10)
			b.SetBytes(int64(c.size))
			for b.Loop() {
				for off := int64(0); off < img.Size(); off += int64(len(buf)) {
					if err := readChain(img, fakeMapper{}, buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// TestRealDifferential opens dfVFS's image-differential.vhd as a child. Its
// parent image.vhd is not in the fixtures, so the chain is not read; the
// child's own layer is checked against qemu-img's reading of a copy whose
// checksums are repaired (qemu-img 7.2 refuses the original).
//
// The checksums are wrong because the file is a qemu-made dynamic disk
// turned into a differencing one by hand: the footer checksum is off by
// exactly the byte sum of the Unique Id plus one (disk type 3 became 4),
// and the dynamic header's by the byte sum of the Parent Unique ID and the
// parent name; the checksums were not recomputed after those edits. The
// package reads on, as it does for any bad checksum, with warnings.
func TestRealDifferential(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	path := filepath.Join(testutil.RealFixtures(t), "log2timeline-dfvfs", "image-differential.vhd")
	b := testutil.ReadFile(t, path)
	img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "image-differential.vhd", AllowParent: true})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(img.Warnings(), "\n")
	if !strings.Contains(w, "footer at the end has a bad checksum") || !strings.Contains(w, "dynamic header has a bad checksum") {
		t.Errorf("warnings %q", w)
	}
	t.Logf("warnings: %s", w)
	if p := img.Parent(); p == nil || !slices.Equal(p.Names, []string{"image.vhd"}) {
		t.Fatalf("Parent() = %+v, want the name image.vhd", p)
	}
	if img.Format() != "vhd differencing (2 MiB blocks)" || img.Size() != 104448 {
		t.Fatalf("Format() = %q, Size() = %d", img.Format(), img.Size())
	}

	// The arithmetic behind the diagnosis in the doc comment.
	sum := func(p []byte) (s uint32) {
		for _, c := range p {
			s += uint32(c)
		}
		return s
	}
	h := b[hHeader : hHeader+dynHeaderSize]
	if d := be.Uint32(b[checksumOff:]) - checksum(b[:footerSize], checksumOff); d != sum(b[68:84])+1 {
		t.Errorf("footer checksum off by %d, not the Unique Id's byte sum + 1 (%d)", d, sum(b[68:84])+1)
	}
	if d := be.Uint32(h[dynChecksumOff:]) - checksum(h, dynChecksumOff); d != sum(h[40:56])+sum(h[parentNameOff:parentNameOff+parentNameSize]) {
		t.Errorf("dynamic header checksum off by %d, not the parent ID's and name's byte sum", d)
	}

	repaired := slices.Clone(b)
	fixSums(repaired)
	dir := t.TempDir()
	qemu := testutil.MapFile(t, testutil.RawOracle(t, dir, testutil.WriteFile(t, filepath.Join(dir, "repaired.vhd"), repaired), "vpc"))
	r, err := img.Map(0)
	if err != nil || r.Kind != blockmap.Stored || r.Len != img.Size() {
		t.Fatalf("Map(0) = %+v, %v; want one stored run (the one block's bitmap is all set)", r, err)
	}
	got := make([]byte, img.Size())
	if _, err := blockmap.ReadAt(img, got, 0); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, qemu); i >= 0 {
		t.Fatalf("differs from qemu-img's reading of the repaired copy at %d", i)
	}
	var fake [16]byte
	if err := img.Parent().Check(&Image{name: "image.vhd", uniqueID: fake}); !errors.Is(err, blockmap.ErrCorrupt) {
		t.Errorf("Check(a VHD with a zero Unique Id) = %v", err)
	}
}
