package vhdx

import (
	"bytes"
	"context"
	"encoding/binary"
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

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// This file builds VHDX images from [MS-VHDX] alone (no tool at hand
// writes a differencing VHDX: qemu-img 7.2 cannot), reads differencing
// children over their parents, and checks them against a model of the
// chain computed here, block by block, so that disks of several GiB (two
// sector bitmap chunks) cost only the blocks they hold.

// gblock is one payload block of a generated image.
type gblock struct {
	state   uint64 // a payload BAT state
	present []bool // PARTIALLY_PRESENT: one bool per logical sector
	seed    int64  // the block's stored bytes are random from this seed
}

// gimage describes an image to generate.
type gimage struct {
	size      int64 // virtual size
	blockSize int64
	sector    int64 // logical sector size, 512 by default
	blocks    map[int64]gblock
	dataWrite guid
	// A child: its parent locator's key-value pairs, in order.
	locator [][2]string
	// Sector bitmap entries to force to SB_BLOCK_NOT_PRESENT, by chunk.
	dropSB map[int64]bool
	// small keeps only the first 64 bytes of each stored block (the rest
	// zeros), for fuzz seeds, which are encoded sparsely.
	small bool
}

func (g gimage) ls() int64 {
	if g.sector == 0 {
		return 512
	}
	return g.sector
}

func (g gimage) chunkRatio() int64 { return (1 << 23) * g.ls() / g.blockSize }

// blockBytes are the bytes a block stores in the file.
func blockBytes(seed, n int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

var (
	testDataWrite = mustGUID("83ED0EC3-24C8-49A6-A959-5E4BF1288BFB")
	otherGUID     = mustGUID("11111111-2222-4333-8444-555555555555")
)

func defaultLocator(linkage guid) [][2]string {
	return [][2]string{
		{"parent_linkage", "{" + strings.ToLower(linkage.String()) + "}"},
		{"absolute_win32_path", `\\?\D:\VMs\base.vhdx`},
		{"relative_path", `..\base\base.vhdx`},
		{"volume_path", `\\?\Volume{26A21BDA-A627-11D7-9931-806E6F6E6963}\VMs\base.vhdx`},
	}
}

// generate lays g out as [MS-VHDX] 2.1 describes: file identifier,
// headers at 64 and 128 KiB, region tables at 192 and 256 KiB, a 1 MiB
// log at 1 MiB (empty), the metadata region at 2 MiB, the BAT region at
// 3 MiB, then payload and sector bitmap blocks from 4 MiB, in block order.
// UNDEFINED and UNMAPPED blocks point at stored garbage (allowed by
// 2.5.1.1), which a reader must not return.
func generate(g gimage) []byte {
	le := binary.LittleEndian
	const mdOff, batOff, dataOff = 2 * mib, 3 * mib, 4 * mib
	ls, bs, cr := g.ls(), g.blockSize, g.chunkRatio()
	nb := (g.size + bs - 1) / bs
	chunks := (nb + cr - 1) / cr
	child := g.locator != nil

	out := make([]byte, dataOff)
	copy(out, "vhdxfile")
	for i, off := range []int64{header1Offset, header2Offset} {
		h := out[off : off+headerSize]
		copy(h, "head")
		le.PutUint64(h[8:], uint64(i+1))
		copy(h[16:32], otherGUID[:]) // FileWriteGuid
		copy(h[32:48], g.dataWrite[:])
		le.PutUint16(h[66:], 1)
		le.PutUint32(h[68:], mib)
		le.PutUint64(h[72:], mib)
		setCRC(h)
	}
	for _, off := range []int64{regionTable1, regionTable2} {
		rt := out[off : off+regionTableSize]
		copy(rt, "regi")
		le.PutUint32(rt[8:], 2)
		for i, r := range []struct {
			id  guid
			off int64
		}{{regionBAT, batOff}, {regionMetadata, mdOff}} {
			e := rt[16+32*i:]
			copy(e, r.id[:])
			le.PutUint64(e[16:], uint64(r.off))
			le.PutUint32(e[24:], mib)
			le.PutUint32(e[28:], 1)
		}
		setCRC(rt)
	}

	md := out[mdOff : mdOff+mib]
	copy(md, "metadata")
	var items []byte
	addItem := func(id guid, data []byte, flags uint32) {
		n := le.Uint16(md[10:])
		e := md[32+32*int(n):]
		copy(e, id[:])
		le.PutUint32(e[16:], uint32(64*kib+len(items)))
		le.PutUint32(e[20:], uint32(len(data)))
		le.PutUint32(e[24:], flags)
		le.PutUint16(md[10:], n+1)
		items = append(items, data...)
	}
	fp := le.AppendUint32(nil, uint32(bs))
	var flags uint32
	if child {
		flags = flagHasParent
	}
	addItem(itemFileParameters, le.AppendUint32(fp, flags), itemRequired)
	addItem(itemVirtualDiskSize, le.AppendUint64(nil, uint64(g.size)), itemRequired|2)
	addItem(itemPage83Data, otherGUID[:], itemRequired|2)
	addItem(itemLogicalSector, le.AppendUint32(nil, uint32(ls)), itemRequired|2)
	addItem(itemPhysicalSector, le.AppendUint32(nil, 4096), itemRequired|2)
	if child {
		addItem(itemParentLocator, locatorBytes(g.locator), itemRequired)
	}
	copy(md[64*kib:], items)

	bat := func(i int64, e uint64) { le.PutUint64(out[batOff+8*i:], e) }
	alloc := func(data []byte) uint64 {
		off := uint64(len(out))
		out = append(out, data...)
		out = append(out, make([]byte, (mib-len(data)%mib)%mib)...)
		return off
	}
	for c := range chunks {
		var sb []byte
		for b := c * cr; b < min(nb, (c+1)*cr); b++ {
			d, ok := g.blocks[b]
			if !ok {
				continue
			}
			e := d.state
			switch d.state {
			case blockFullyPresent, blockPartiallyPresent, blockUndefined, blockUnmapped:
				data := blockBytes(d.seed, bs)
				if g.small {
					clear(data[64:])
				}
				e |= alloc(data)
			}
			bat(b+c, e)
			if d.state == blockPartiallyPresent {
				if sb == nil {
					sb = make([]byte, sectorBitmapSize)
				}
				first := (b % cr) * (bs / ls)
				for i, set := range d.present {
					if set {
						k := first + int64(i)
						sb[k/8] |= 1 << (k % 8)
					}
				}
			}
		}
		if sb != nil && !g.dropSB[c] {
			bat(c*(cr+1)+cr, sbBlockPresent|alloc(sb))
		}
	}
	return out
}

// locatorBytes encodes key-value pairs as a VHDX parent locator
// ([MS-VHDX] 2.6.2.6): the header, the entries, then the UTF-16 strings.
func locatorBytes(kv [][2]string) []byte {
	le := binary.LittleEndian
	b := make([]byte, 20+12*len(kv))
	copy(b, locatorVHDX[:])
	le.PutUint16(b[18:], uint16(len(kv)))
	for i, p := range kv {
		k, v := utf16Bytes(p[0]), utf16Bytes(p[1])
		e := b[20+12*i:]
		le.PutUint32(e[0:], uint32(len(b)))
		le.PutUint16(e[8:], uint16(len(k)))
		b = append(b, k...)
		e = b[20+12*i:]
		le.PutUint32(e[4:], uint32(len(b)))
		le.PutUint16(e[10:], uint16(len(v)))
		b = append(b, v...)
	}
	return b
}

// chainModel computes the bytes of [off, off+len(p)) of a child over a
// parent from their descriptions alone, a sector at a time.
func chainModel(child, parent gimage, p []byte, off int64) {
	ls, bs := child.ls(), child.blockSize
	for i := 0; i < len(p); {
		v := off + int64(i)
		b, in := v/bs, v%bs
		n := int(min(ls-in%ls, int64(len(p)-i)))
		dst := p[i : i+n]
		i += n
		d, ok := child.blocks[b]
		mine := false
		switch {
		case !ok || d.state == blockNotPresent:
		case d.state == blockFullyPresent:
			mine = true
		case d.state == blockPartiallyPresent:
			mine = d.present[in/ls]
		default: // ZERO, UNDEFINED, UNMAPPED: zeros
			clear(dst)
			continue
		}
		src := parent
		if mine {
			src = child
		}
		if pd, ok := src.blocks[b]; ok && (pd.state == blockFullyPresent || (mine && pd.state == blockPartiallyPresent)) {
			copy(dst, blockData(pd.seed, bs)[in:])
		} else {
			clear(dst)
		}
	}
}

var blockCache = map[int64][]byte{}

// blockData is blockBytes, kept: the model asks for the same blocks often.
func blockData(seed, bs int64) []byte {
	b, ok := blockCache[seed]
	if !ok {
		b = blockBytes(seed, bs)
		blockCache[seed] = b
	}
	return b
}

// diffPair is a parent and a child of a given size: parent blocks present
// on every third block; child blocks cycling through every state, with
// partial blocks in random run patterns, plus partial blocks on both sides
// of a chunk boundary when the disk has two chunks.
func diffPair(size int64, seed int64) (parent, child gimage) {
	const bs = mib
	rng := rand.New(rand.NewSource(seed))
	nb := (size + bs - 1) / bs
	parent = gimage{size: size, blockSize: bs, blocks: map[int64]gblock{}, dataWrite: testDataWrite}
	child = gimage{size: size, blockSize: bs, blocks: map[int64]gblock{}, dataWrite: otherGUID, locator: defaultLocator(testDataWrite)}
	var bl []int64
	if nb <= 64 {
		for b := range nb {
			bl = append(bl, b)
		}
	} else {
		cr := child.chunkRatio()
		bl = []int64{0, 1, 2, 3, 4, 5, 6, 7, cr - 2, cr - 1, cr, cr + 1, nb - 1}
	}
	states := []uint64{blockPartiallyPresent, blockNotPresent, blockFullyPresent, blockZero, blockPartiallyPresent, blockUndefined, blockUnmapped, blockPartiallyPresent}
	for i, b := range bl {
		parent.blocks[b] = gblock{state: blockFullyPresent, seed: seed*1000 + b}
		if i%4 == 1 {
			delete(parent.blocks, b)
		}
		st := states[i%len(states)]
		d := gblock{state: st, seed: seed*1000 + 500 + b}
		if st == blockPartiallyPresent {
			d.present = runs(rng, bs/512)
		}
		child.blocks[b] = d
	}
	if nb > 64 { // partial blocks on both sides of the chunk boundary
		cr := child.chunkRatio()
		for _, b := range []int64{cr - 1, cr} {
			child.blocks[b] = gblock{state: blockPartiallyPresent, present: runs(rng, bs/512), seed: seed*1000 + 500 + b}
		}
	}
	return parent, child
}

func runs(rng *rand.Rand, n int64) []bool {
	p := make([]bool, n)
	set := rng.Intn(2) == 0
	for i := int64(0); i < n; {
		l := 1 + rng.Int63n(3)
		if rng.Intn(4) == 0 {
			l = 1 + rng.Int63n(300)
		}
		for j := i; j < min(n, i+l); j++ {
			p[j] = set
		}
		i += l
		set = !set
	}
	return p
}

func openBytesOpts(t testing.TB, b []byte, allow bool) *Image {
	t.Helper()
	img, err := Open(strictReader{t, b}, int64(len(b)), Options{Name: "gen.vhdx", AllowParent: allow})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return img
}

// readChain reads through child over parent as package vdisk will.
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

// TestGeneratedParent checks the generator against qemu-img: a dynamic
// VHDX it writes reads as qemu-img reads it.
func TestGeneratedParent(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	parent, _ := diffPair(9*mib+512*3, 1)
	b := generate(parent)
	p := filepath.Join(t.TempDir(), "gen.vhdx")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	img := openBytesOpts(t, b, true)
	if img.Parent() != nil || img.DataWriteGUID() != testDataWrite.String() {
		t.Fatalf("Parent() = %+v, DataWriteGUID() = %s", img.Parent(), img.DataWriteGUID())
	}
	want := oracle(t, p)
	compareAll(t, img, want)
	model := make([]byte, img.Size())
	chainModel(parent, gimage{}, model, 0) // a dynamic disk is its own model: its NOT_PRESENT blocks read as zeros
	if !rawBytes(model).same(t, want) {
		t.Fatal("the model of the generated dynamic disk differs from qemu-img's reading")
	}
}

// TestDifferencing reads generated children over their parents against
// the chain model: a small disk with every state, and a 4 GiB one whose
// partial blocks straddle the boundary between two sector bitmap chunks.
func TestDifferencing(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"small", 17*mib - 3*512},
		{"two chunks", 4097*mib + 512*7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, child := diffPair(tc.size, 7)
			pimg := openBytesOpts(t, generate(parent), false)
			cb := generate(child)
			img := openBytesOpts(t, cb, true)
			if img.Size() != tc.size || img.Format() != "vhdx differencing (1 MiB blocks)" {
				t.Fatalf("Size() = %d, Format() = %q", img.Size(), img.Format())
			}
			p := img.Parent()
			wantNames := []string{`..\base\base.vhdx`, `\\?\Volume{26A21BDA-A627-11D7-9931-806E6F6E6963}\VMs\base.vhdx`, `\\?\D:\VMs\base.vhdx`}
			if p == nil || !slices.Equal(p.Names, wantNames) || p.Format != "" {
				t.Fatalf("Parent() = %+v", p)
			}
			if err := p.Check(pimg); err != nil {
				t.Fatalf("Check(parent): %v", err)
			}
			var blocks []int64
			for b := range child.blocks {
				blocks = append(blocks, b)
			}
			slices.Sort(blocks)
			runs, kinds := 0, map[blockmap.Kind]int{}
			got, want := make([]byte, mib), make([]byte, mib)
			for _, b := range blocks {
				vs := b * mib
				n := min(mib, tc.size-vs)
				if err := readChain(img, pimg, got[:n], vs); err != nil {
					t.Fatal(err)
				}
				chainModel(child, parent, want[:n], vs)
				if !bytes.Equal(got[:n], want[:n]) {
					t.Fatalf("block %d (state %d): chain read differs from the model at +%d", b, child.blocks[b].state, firstDiff(got[:n], want[:n]))
				}
				r, k := checkBlockRuns(t, img, child, b)
				runs += r
				for kk, v := range k {
					kinds[kk] += v
				}
			}
			rng := rand.New(rand.NewSource(3))
			for range 100 {
				b := blocks[rng.Intn(len(blocks))]
				off := b*mib + rng.Int63n(mib) - mib/4
				off = max(0, min(off, tc.size-1))
				n := 1 + rng.Int63n(min(tc.size-off, mib))
				if err := readChain(img, pimg, got[:n], off); err != nil {
					t.Fatal(err)
				}
				chainModel(child, parent, want[:n], off)
				if !bytes.Equal(got[:n], want[:n]) {
					t.Fatalf("read of %d at %d differs from the model at +%d", n, off, firstDiff(got[:n], want[:n]))
				}
			}
			t.Logf("%d blocks checked in %d runs %v", len(blocks), runs, kinds)
		})
	}
}

// checkBlockRuns walks block b's runs: each matches the model's kind for
// every sector it covers and, inside a PARTIALLY_PRESENT block, is maximal.
func checkBlockRuns(t *testing.T, img *Image, g gimage, b int64) (int, map[blockmap.Kind]int) {
	t.Helper()
	kinds := map[blockmap.Kind]int{}
	d := g.blocks[b]
	vs, ve := b*mib, min((b+1)*mib, img.Size())
	n := 0
	for pos := vs; pos < ve; {
		r, err := img.Map(pos)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Check(pos, img.Size()); err != nil {
			t.Fatal(err)
		}
		kinds[r.Kind]++
		n++
		for s := max(r.Off, vs); s < min(r.End(), ve); s += 512 {
			want := blockmap.Zero
			switch d.state {
			case blockNotPresent:
				want = blockmap.Hole
			case blockFullyPresent:
				want = blockmap.Stored
			case blockPartiallyPresent:
				want = blockmap.Hole
				if d.present[(s-vs)/512] {
					want = blockmap.Stored
				}
			}
			if r.Kind != want {
				t.Fatalf("block %d (state %d): Map(%d) = %v [%d, %d), but sector at %d is %v", b, d.state, pos, r.Kind, r.Off, r.End(), s, want)
			}
		}
		if d.state == blockPartiallyPresent {
			if r.Off < vs || r.End() > ve {
				t.Fatalf("partial block %d: run [%d, %d) leaves the block", b, r.Off, r.End())
			}
			first, last := (r.Off-vs)/512, (r.End()-vs)/512-1
			if first > 0 && d.present[first-1] == d.present[first] {
				t.Fatalf("partial block %d: run [%d, %d) is not maximal", b, r.Off, r.End())
			}
			if last+1 < (ve-vs)/512 && d.present[last+1] == d.present[last] {
				t.Fatalf("partial block %d: run [%d, %d) is not maximal", b, r.Off, r.End())
			}
		}
		pos = r.End()
	}
	return n, kinds
}

// TestDifferencingLocator: the locator's hostile and incomplete forms are
// refused with a clear error and without reading outside the member; a
// second linkage is accepted by Check.
func TestDifferencingLocator(t *testing.T) {
	parent, child := diffPair(3*mib, 2)
	pimg := openBytesOpts(t, generate(parent), false)
	link := defaultLocator(testDataWrite)
	for _, tc := range []struct {
		name   string
		kv     [][2]string
		edit   func(b []byte)
		target error
		msg    string
	}{
		{"no parent_linkage", link[1:], nil, blockmap.ErrCorrupt, "no parent_linkage"},
		{"no path", link[:1], nil, blockmap.ErrCorrupt, "none of relative_path"},
		{"malformed linkage", append([][2]string{{"parent_linkage", "{not-a-guid}"}}, link[1:]...), nil, blockmap.ErrCorrupt, "parent_linkage: malformed GUID"},
		{"duplicate key", append(slices.Clone(link), [2]string{"relative_path", "x"}), nil, blockmap.ErrCorrupt, `the key "relative_path" twice`},
		{"entry outside", link, func(b []byte) {
			binary.LittleEndian.PutUint32(b[20+12:], 1<<30)
		}, blockmap.ErrCorrupt, "lies outside"},
		{"count too large", link, func(b []byte) {
			binary.LittleEndian.PutUint16(b[18:], 0xFFFF)
		}, blockmap.ErrCorrupt, "more than its"},
		{"other locator type", link, func(b []byte) {
			copy(b, otherGUID[:])
		}, blockmap.ErrUnsupported, "not the VHDX type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := child
			c.locator = tc.kv
			b := generate(c)
			if tc.edit != nil {
				tc.edit(b[itemFileOffset(t, b, itemParentLocator):])
			}
			_, err := Open(strictReader{t, b}, int64(len(b)), Options{Name: "bad.vhdx", AllowParent: true})
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Open = %v, want %v containing %q", err, tc.target, tc.msg)
			}
			t.Log(err)
			// Without AllowParent the refusal is today's.
			if _, err := Open(strictReader{t, b}, int64(len(b)), Options{Name: "bad.vhdx"}); !errors.Is(err, blockmap.ErrUnsupported) {
				t.Errorf("Open without AllowParent = %v", err)
			}
		})
	}

	// A locator item larger than the specification allows.
	b := generate(child)
	e := itemEntry(t, b, itemParentLocator)
	binary.LittleEndian.PutUint32(b[e+20:], 2*mib)
	if _, err := Open(strictReader{t, b}, int64(len(b)), Options{Name: "bad.vhdx", AllowParent: true}); !errors.Is(err, blockmap.ErrCorrupt) {
		t.Errorf("Open with a 2 MiB locator = %v", err)
	}

	// parent_linkage2 names another accepted DataWriteGuid.
	c := child
	c.locator = append([][2]string{{"parent_linkage", "{" + otherGUID.String() + "}"}, {"parent_linkage2", "{" + testDataWrite.String() + "}"}}, link[1:]...)
	img := openBytesOpts(t, generate(c), true)
	if err := img.Parent().Check(pimg); err != nil {
		t.Errorf("Check with parent_linkage2 matching: %v", err)
	}
	c.locator = append([][2]string{{"parent_linkage", "{" + otherGUID.String() + "}"}}, link[1:]...)
	img = openBytesOpts(t, generate(c), true)
	err := img.Parent().Check(pimg)
	if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), otherGUID.String()) || !strings.Contains(err.Error(), testDataWrite.String()) {
		t.Fatalf("Check with another linkage = %v, want ErrCorrupt naming both", err)
	}
	t.Log(err)
	err = img.Parent().Check(fakeMapper{})
	if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), "a fake raw disk") {
		t.Fatalf("Check(another format) = %v", err)
	}
	t.Log(err)
}

type fakeMapper struct{}

func (fakeMapper) Size() int64                         { return 1 << 20 }
func (fakeMapper) Map(off int64) (blockmap.Run, error) { return blockmap.Run{Len: 1 << 20}, nil }
func (fakeMapper) Format() string                      { return "fake raw disk" }

// TestDifferencingHostileBitmaps: a PARTIALLY_PRESENT block whose chunk has
// no sector bitmap fails its reads only; a sector bitmap entry outside the
// file or on a structure fails Open, as a bad payload entry does.
func TestDifferencingHostileBitmaps(t *testing.T) {
	_, child := diffPair(9*mib, 4)
	c := child
	c.dropSB = map[int64]bool{0: true}
	img := openBytesOpts(t, generate(c), true)
	_, err := img.Map(0) // block 0 is partial
	if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), "sector bitmap of its chunk 0") {
		t.Fatalf("Map of a partial block without a bitmap = %v", err)
	}
	t.Log(err)
	if r, err := img.Map(2*mib + 5); err != nil || r.Kind != blockmap.Stored {
		t.Errorf("the fully present block 2: %+v, %v", r, err)
	}

	b := generate(child)
	batOff, _, _ := regionOf(t, b, regionBAT)
	sb := batOff + 8*child.chunkRatio()
	for _, tc := range []struct {
		name string
		e    uint64
		msg  string
	}{
		{"past the end", sbBlockPresent | uint64(len(b)), "past the end"},
		{"on the BAT", sbBlockPresent | uint64(batOff), "overlaps the BAT region"},
		{"absurd", sbBlockPresent | 1<<63, "absurd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bb := slices.Clone(b)
			binary.LittleEndian.PutUint64(bb[sb:], tc.e)
			_, err := Open(strictReader{t, bb}, int64(len(bb)), Options{Name: "bad.vhdx", AllowParent: true})
			if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "sector bitmap") {
				t.Fatalf("Open = %v, want ErrCorrupt containing %q", err, tc.msg)
			}
			// A dynamic disk ignores sector bitmap entries, as before.
			binary.LittleEndian.PutUint32(bb[itemFileOffset(t, bb, itemFileParameters)+4:], 0)
			if _, err := Open(strictReader{t, bb}, int64(len(bb)), Options{Name: "dyn.vhdx", AllowParent: true}); err != nil &&
				!strings.Contains(err.Error(), "PARTIALLY_PRESENT") {
				t.Errorf("as a dynamic disk: %v", err)
			}
		})
	}
}

// TestDifferencingBitmapCache: walking a partial block reads its bitmap
// once, and Map then allocates nothing.
func TestDifferencingBitmapCache(t *testing.T) {
	_, child := diffPair(9*mib, 5)
	b := generate(child)
	cr := &countingReader{r: bytes.NewReader(b)}
	img, err := Open(cr, int64(len(b)), Options{Name: "c.vhdx", AllowParent: true})
	if err != nil {
		t.Fatal(err)
	}
	cr.n = 0
	runs, _ := checkBlockRuns(t, img, child, 0)
	if cr.n != 1 || runs < 10 {
		t.Errorf("%d runs read the bitmap %d times, want once", runs, cr.n)
	}
	if n := testing.AllocsPerRun(100, func() { img.Map(700) }); n != 0 {
		t.Errorf("Map of a partial block allocates %v times per call", n)
	}
}

type countingReader struct {
	r io.ReaderAt
	n int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.n++
	return c.r.ReadAt(p, off)
}

// TestDifferencingRefused: without AllowParent a generated child is refused
// as before, naming its parent; qemu-img 7.2 refuses it too.
func TestDifferencingRefused(t *testing.T) {
	_, child := diffPair(3*mib, 6)
	b := generate(child)
	_, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "child.vhdx"})
	if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), `relative_path "..\\base\\base.vhdx"`) {
		t.Fatalf("Open = %v", err)
	}
	if _, err := exec.LookPath("qemu-img"); err == nil {
		p := filepath.Join(t.TempDir(), "child.vhdx")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := execOut("qemu-img", "info", "-f", "vhdx", p)
		if err == nil {
			t.Errorf("qemu-img 7.2 opened a differencing VHDX: %s", out)
		}
		t.Logf("qemu-img: %s", bytes.TrimSpace(out))
	}
}

// TestDifferencingAllocs: Open of a 4 GiB child allocates in proportion to
// its metadata, not its size.
func TestDifferencingAllocs(t *testing.T) {
	_, child := diffPair(4097*mib, 8)
	b := generate(child)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "c.vhdx", AllowParent: true}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Errorf("Open allocated %d bytes", a)
	}
}

// TestBitRun checks the word-at-a-time run search against a bit-by-bit
// one, on random bitmaps made of runs, least significant bit first.
func TestBitRun(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for range 300 {
		nb := 8 * (1 + rng.Intn(40))
		n := 1 + rng.Intn(8*nb)
		bits := runs(rng, int64(8*nb))
		bm := make([]byte, nb)
		for i, b := range bits {
			if b {
				bm[i/8] |= 1 << (i % 8)
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

// TestDiffSeeds checks that the generated fuzz seeds open as children and
// map, so the fuzzer starts from valid differencing structures.
func TestDiffSeeds(t *testing.T) {
	for i, seed := range diffSeeds() {
		s := decodeSparse(seed)
		img, err := Open(s, s.size, Options{Name: "seed", AllowParent: true})
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if img.Parent() == nil {
			t.Fatalf("seed %d is not a child", i)
		}
		_, err = img.Map(0)
		if (err != nil) != (i == 1) {
			t.Errorf("seed %d: Map(0) = %v", i, err)
		}
		t.Logf("seed %d: %d bytes", i, len(seed))
	}
}
