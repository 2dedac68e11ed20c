package vdi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

func openBytes(b []byte) (*Image, error) {
	return Open(bytes.NewReader(b), int64(len(b)), Options{Name: "test.vdi"})
}

func openChild(b []byte, name string) (*Image, error) {
	return Open(bytes.NewReader(b), int64(len(b)), Options{Name: name, AllowParent: true})
}

// openPath opens an image file, checking that Detect recognises it.
func openPath(t *testing.T, path string) *Image {
	t.Helper()
	b := testutil.MapFile(t, path)
	if !Detect(bytes.NewReader(b), int64(len(b))) {
		t.Errorf("Detect(%s) = false", path)
	}
	img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: filepath.Base(path)})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return img
}

// compare reads [off, off+n) through m and compares it with want, including
// the io.EOF a read past the end must return.
func compare(m blockmap.Mapper, want []byte, off, n int64) error {
	buf := make([]byte, n)
	got, err := blockmap.ReadAt(m, buf, off)
	size := int64(len(want))
	exp := max(0, min(n, size-off))
	if int64(got) != exp {
		return fmt.Errorf("ReadAt(%d, %d) read %d bytes, want %d (err %v)", off, n, got, exp, err)
	}
	if exp < n && err != io.EOF {
		return fmt.Errorf("ReadAt(%d, %d) past the end: err %v, want io.EOF", off, n, err)
	}
	if exp == n && err != nil {
		return fmt.Errorf("ReadAt(%d, %d): %v", off, n, err)
	}
	if !bytes.Equal(buf[:exp], want[off:off+exp]) {
		i := 0
		for buf[i] == want[off+int64(i)] {
			i++
		}
		return fmt.Errorf("ReadAt(%d, %d): first difference at virtual offset %d", off, n, off+int64(i))
	}
	return nil
}

// compareBytes reads the whole disk in 1 MiB reads, then seeded random
// ranges, some across block boundaries and past the end.
func compareBytes(t *testing.T, m blockmap.Mapper, want []byte) {
	t.Helper()
	if m.Size() != int64(len(want)) {
		t.Fatalf("Size() = %d, the oracle has %d bytes", m.Size(), len(want))
	}
	size := int64(len(want))
	for off := int64(0); off < size; off += 1 << 20 {
		if err := compare(m, want, off, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	rnd := rand.New(rand.NewSource(size))
	for i := range 120 {
		off := rnd.Int63n(size)
		if i%10 == 0 {
			off = size - rnd.Int63n(min(size, 4096)) - 1
		}
		// Mostly short reads, some over several 1 MiB blocks.
		n := 1 + rnd.Int63n(min(64<<10, size))
		if i%4 == 0 {
			n = 1 + rnd.Int63n(min(3<<20, size/2+4096))
		}
		if err := compare(m, want, off, n); err != nil {
			t.Fatal(err)
		}
	}
}

// qemuExtent is one entry of qemu-img map --output=json.
type qemuExtent struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	Data   bool  `json:"data"`
	Zero   bool  `json:"zero"`
}

func qemuMap(t *testing.T, path string) []qemuExtent {
	t.Helper()
	testutil.RequireTool(t, "qemu-img")
	out, err := exec.Command("qemu-img", "map", "-f", "vdi", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img map %s: %v", path, err)
	}
	var ext []qemuExtent
	if err := json.Unmarshal(out, &ext); err != nil {
		t.Fatal(err)
	}
	return ext
}

// compareMap checks that every run Map returns agrees with qemu-img map on
// data against no data (qemu calls a free and a zero block both "zero",
// and a base image has no parent to tell them apart).
func compareMap(t *testing.T, img *Image, ext []qemuExtent) (runs int) {
	t.Helper()
	var covered int64
	for _, e := range ext {
		if e.Start != covered {
			t.Fatalf("qemu-img map skips from %d to %d", covered, e.Start)
		}
		covered = e.Start + e.Length
		if !e.Data && !e.Zero {
			t.Fatalf("qemu-img map: [%d, +%d) neither data nor zero", e.Start, e.Length)
		}
		for off := e.Start; off < covered; {
			r, err := img.Map(off)
			if err != nil {
				t.Fatalf("Map(%d): %v", off, err)
			}
			if err := r.Check(off, img.Size()); err != nil {
				t.Fatalf("Map(%d) = %+v: %v", off, r, err)
			}
			if r.Kind.HasData() != e.Data {
				t.Fatalf("Map(%d) = %v, qemu-img map says data=%v for [%d, +%d)", off, r.Kind, e.Data, e.Start, e.Length)
			}
			off = min(r.End(), covered)
			runs++
		}
	}
	if covered != img.Size() {
		t.Fatalf("qemu-img map covers %d bytes, the disk has %d", covered, img.Size())
	}
	return runs
}

// checkQemu compares img with qemu's reading of the file at path: the
// bytes of qemu-img convert -O raw and the map of qemu-img map.
func checkQemu(t *testing.T, img *Image, path string) {
	t.Helper()
	raw := testutil.RawOracle(t, t.TempDir(), path, "vdi")
	want := testutil.MapFile(t, raw)
	compareBytes(t, img, want)
	runs := compareMap(t, img, qemuMap(t, path))
	t.Logf("%s (%s): %d bytes and %d runs agree with qemu-img", filepath.Base(path), img.Format(), len(want), runs)
}

// TestQemuConvert: a disk with a partition table and ext4 full of real
// files, converted by qemu-img into dynamic and static VDI.
func TestQemuConvert(t *testing.T) {
	dir := t.TempDir()
	src := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	for _, tc := range []struct{ opts, format string }{
		{"", "vdi dynamic (1 MiB blocks)"},
		{"static=on", "vdi fixed (1 MiB blocks)"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			path := testutil.Convert(t, dir, src, "vdi", tc.opts)
			img := openPath(t, path)
			if img.Format() != tc.format || len(img.Warnings()) > 0 || img.Parent() != nil {
				t.Errorf("Format() = %q, Warnings() = %q, Parent() = %v", img.Format(), img.Warnings(), img.Parent())
			}
			checkQemu(t, img, path)
			// The raw disk is the first oracle's source too.
			compareBytes(t, img, testutil.MapFile(t, src))
		})
	}
}

// TestQemuIO: blocks written by qemu-io out of virtual order, so that the
// block map is not the identity, over a disk whose last block is partial.
func TestQemuIO(t *testing.T) {
	testutil.RequireTool(t, "qemu-io")
	path := filepath.Join(t.TempDir(), "io.vdi")
	testutil.QemuImg(t, "create", "-q", "-f", "vdi", path, "7680K")
	var cmds []string
	for i, w := range []struct{ off, n string }{
		{"6M", "1M"}, {"1M", "64k"}, {"3M+512", "1M"}, {"0", "4k"}, {"7424K", "256K"}, {"2M", "1M"},
	} {
		off := w.off
		if a, b, ok := strings.Cut(off, "+"); ok {
			off = fmt.Sprint(parseSize(a) + parseSize(b))
		}
		cmds = append(cmds, fmt.Sprintf("write -P %#x %s %s", 0x31+i*0x11, off, w.n))
	}
	runQemuIO(t, path, cmds...)
	img := openPath(t, path)
	if img.entry(6) != 0 || img.entry(1) != 1 {
		t.Fatalf("qemu-io did not allocate out of order: entries %d, %d", img.entry(6), img.entry(1))
	}
	checkQemu(t, img, path)
}

// runQemuIO runs qemu-io commands on a VDI file.
func runQemuIO(t *testing.T, path string, cmds ...string) {
	t.Helper()
	testutil.RequireTool(t, "qemu-io")
	args := []string{"-f", "vdi"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("qemu-io", append(args, path)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "error") {
		t.Fatalf("qemu-io %q: %v\n%s", cmds, err, out)
	}
}

func parseSize(s string) int64 {
	var n int64
	var unit string
	fmt.Sscanf(s, "%d%s", &n, &unit)
	return n << map[string]uint{"": 0, "k": 10, "K": 10, "M": 20}[unit]
}

// testData is n bytes of data with whole zero blocks here and there.
func testData(n int, seed int64) []byte {
	rnd := rand.New(rand.NewSource(seed))
	b := make([]byte, n)
	// Random 4 KiB pieces, repeated: byte by byte, math/rand is slow under
	// the race detector.
	piece := make([]byte, 4096)
	rnd.Read(piece)
	for i := 0; i < n; i += len(piece) {
		copy(b[i:], piece)
		b[i] ^= byte(i >> 12)
		if i+1 < n {
			b[i+1] ^= byte(i >> 20)
		}
	}
	for blk := 0; blk*(1<<20) < n; blk++ {
		if blk%3 == 1 {
			clear(b[blk<<20 : min(n, (blk+1)<<20)])
		}
	}
	return b
}

// TestGeneratedAgainstQemu: images from the test's generator, read by
// this package and by qemu: blocks stored in a shuffled order, zero
// blocks, VirtualBox's 1 MiB-aligned layout, a 1.1 header without the
// LCHS geometry, and an odd disk size, which qemu rounds up.
func TestGeneratedAgainstQemu(t *testing.T) {
	dir := t.TempDir()
	data := testData(9<<20, 1)
	kinds := []byte("SFSZSFSSZ")
	for _, tc := range []struct {
		name string
		s    spec
		warn string
	}{
		{"shuffled", spec{data: data, shuffle: 7}, ""},
		{"zero blocks", spec{data: data, kinds: kinds, shuffle: 3}, ""},
		{"VirtualBox layout", spec{data: data, align: 1 << 20, kinds: kinds}, ""},
		{"1.1 header", spec{data: data, cbHeader: v1HeaderSize, shuffle: 5}, ""},
		{"fixed", spec{data: data, imageType: typeFixed}, ""},
		{"odd disk size", spec{data: data[:5<<20+1000], diskSize: 5<<20 + 700, shuffle: 2}, "not a whole number of sectors"},
		{"more entries than the disk needs", spec{data: data[:3<<20], blocks: 40}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := build(tc.s)
			path := testutil.WriteFile(t, filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".vdi"), b)
			img := openPath(t, path)
			if w := strings.Join(img.Warnings(), "\n"); (tc.warn == "") != (w == "") || !strings.Contains(w, tc.warn) {
				t.Errorf("warnings %q, want %q", w, tc.warn)
			}
			checkQemu(t, img, path)
		})
	}
}

// TestPastEndAgainstQemu: where a block map entry puts a block past the end
// of the file, qemu 7.2 reads zeros without a word (its reads past the end
// of a file are zeros); this package refuses that block, as VirtualBox's
// read does (VERR_VD_READ_OUT_OF_RANGE), and reads every other block as
// qemu does.
func TestPastEndAgainstQemu(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "past.vdi")
	testutil.QemuImg(t, "create", "-q", "-f", "vdi", path, "4M")
	runQemuIO(t, path, "write -P 0x61 0 1M", "write -P 0x62 1M 1M", "write -P 0x63 3M 1M")
	b := testutil.ReadFile(t, path)
	offBlocks := le.Uint32(b[preHeaderSize+0x10c:])
	le.PutUint32(b[offBlocks+4:], 7) // block 1: stored block 7, past the end
	testutil.WriteFile(t, path, b)

	want := testutil.ReadFile(t, testutil.RawOracle(t, dir, path, "vdi"))
	if !allZero(want[1<<20 : 2<<20]) {
		t.Fatal("qemu-img no longer reads a block past the end of the file as zeros; revisit the package documentation")
	}
	img := openPath(t, path)
	if w := strings.Join(img.Warnings(), "\n"); !strings.Contains(w, "1 of 3 allocated blocks cannot be read") {
		t.Errorf("warnings %q", w)
	}
	if _, err := img.Map(1<<20 + 5); !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), "block map entry 1 (stored block 7)") {
		t.Errorf("Map(block 1) = %v", err)
	}
	for _, blk := range []int64{0, 2, 3} {
		if err := compare(img, want, blk<<20, 1<<20); err != nil {
			t.Errorf("block %d: %v", blk, err)
		}
	}
}
