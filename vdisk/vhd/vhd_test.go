package vhd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const chunk = 1 << 20

// partitioned is the shared 64 MiB test disk with 24 MiB of real files.
func partitioned(t *testing.T) string {
	t.Helper()
	return testutil.PartitionedDisk(t, 64<<20, 24<<20)
}

func openPath(t *testing.T, path string) *Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if !Detect(f, st.Size()) {
		t.Errorf("Detect(%s) = false", path)
	}
	img, err := Open(f, st.Size(), Options{Name: filepath.Base(path)})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return img
}

func openBytes(b []byte) (*Image, error) {
	return Open(bytes.NewReader(b), int64(len(b)), Options{Name: "test.vhd"})
}

// qemuSize is the virtual size qemu-img 7.2 reports for a vpc image.
func qemuSize(t *testing.T, path string) int64 {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-f", "vpc", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info.VirtualSize
}

// reader compares reads through a mapper with an oracle, reusing its
// buffer. Each goroutine needs its own.
type reader struct {
	img  *Image
	want []byte
	buf  []byte
}

// compare reads [off, off+n) through the mapper and compares it with the
// oracle, including the io.EOF a read past the end must return.
func (rd *reader) compare(off, n int64) error {
	img, want := rd.img, rd.want
	if int64(cap(rd.buf)) < n {
		rd.buf = make([]byte, n)
	}
	buf := rd.buf[:n]
	got, err := blockmap.ReadAt(img, buf, off)
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

// compareAll reads the whole disk in 1 MiB chunks.
func compareAll(t *testing.T, img *Image, want []byte) {
	t.Helper()
	if img.Size() != int64(len(want)) {
		t.Fatalf("Size() = %d, oracle has %d bytes", img.Size(), len(want))
	}
	rd := &reader{img: img, want: want}
	for off := int64(0); off < img.Size(); off += chunk {
		if err := rd.compare(off, chunk); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("compared all %d bytes in 1 MiB reads", len(want))
}

// compareRandom reads n seeded random ranges of up to 256 KiB, some
// running past the end.
func compareRandom(t *testing.T, img *Image, want []byte, seed int64, n int) {
	t.Helper()
	rnd := rand.New(rand.NewSource(seed))
	size := int64(len(want))
	rd := &reader{img: img, want: want}
	for i := range n {
		off := rnd.Int63n(size)
		if i%10 == 0 {
			off = size - rnd.Int63n(min(size, 4096)) - 1
		}
		l := 1 + rnd.Int63n(256<<10)
		if err := rd.compare(off, l); err != nil {
			t.Fatal(err)
		}
	}
}

// compareBoundaries reads across unit boundaries (at most about 256 of
// them, evenly spread) and the last, possibly partial, unit.
func compareBoundaries(t *testing.T, img *Image, want []byte, unit int64) {
	t.Helper()
	size := int64(len(want))
	rd := &reader{img: img, want: want}
	step := max(unit, (size/unit/256)*unit)
	for b := unit; b < size; b += step {
		for _, r := range [][2]int64{{b - 1, 2}, {b - 700, 1400}, {b - 5000, 3*4096 + 1}} {
			if r[0] < 0 {
				continue
			}
			if err := rd.compare(r[0], r[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := (size - 1) / unit * unit
	for _, r := range [][2]int64{{last, size - last}, {last, unit}, {size - 1, 1}, {size - 1, 4096}} {
		if err := rd.compare(r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
}

// compareConcurrent runs 8 readers at once, for the race detector.
func compareConcurrent(t *testing.T, img *Image, want []byte) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(g) + 100))
			rd := &reader{img: img, want: want}
			for range 32 {
				off := rnd.Int63n(int64(len(want)))
				if err := rd.compare(off, 1+rnd.Int63n(128<<10)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// walkRuns maps the whole disk run by run, checking the Mapper contract
// and that unallocated blocks come back coalesced.
func walkRuns(t *testing.T, img *Image) (holes, stored int) {
	t.Helper()
	prev := blockmap.Kind(255)
	for pos := int64(0); pos < img.Size(); {
		r, err := img.Map(pos)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Check(pos, img.Size()); err != nil {
			t.Fatalf("Map(%d) = %+v: %v", pos, r, err)
		}
		if r.Off != pos {
			t.Fatalf("Map(%d) starts at %d, want the end of the previous run", pos, r.Off)
		}
		switch r.Kind {
		case blockmap.Hole:
			if prev == blockmap.Hole {
				t.Fatalf("two hole runs in a row at %d", pos)
			}
			holes++
		case blockmap.Stored:
			stored++
		default:
			t.Fatalf("Map(%d) returned a %v run", pos, r.Kind)
		}
		prev = r.Kind
		pos = r.End()
	}
	return holes, stored
}

// TestQemuImages compares qemu-img's own VHD output, dynamic and fixed,
// with and without force_size, against qemu-img's raw conversion.
func TestQemuImages(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	disk := partitioned(t)
	for _, tc := range []struct {
		opts, format string
		size         int64
	}{
		{"", "vhd dynamic (2 MiB blocks)", 67125248}, // creator "qemu": CHS rounded up
		{"force_size=on", "vhd dynamic (2 MiB blocks)", 64 << 20},
		{"subformat=fixed", "vhd fixed", 67125248},
		{"subformat=fixed,force_size=on", "vhd fixed", 64 << 20},
	} {
		t.Run("opts="+tc.opts, func(t *testing.T) {
			dir := t.TempDir()
			path := testutil.Convert(t, dir, disk, "vpc", tc.opts)
			want := testutil.MapFile(t, testutil.RawOracle(t, dir, path, "vpc"))
			if q := qemuSize(t, path); q != tc.size {
				t.Fatalf("qemu-img reports %d bytes, the test expects %d", q, tc.size)
			}
			img := openPath(t, path)
			if img.Size() != tc.size || img.Format() != tc.format {
				t.Fatalf("Size() = %d, Format() = %q; want %d, %q", img.Size(), img.Format(), tc.size, tc.format)
			}
			if w := img.Warnings(); len(w) != 0 {
				t.Errorf("unexpected warnings: %q", w)
			}
			compareAll(t, img, want)
			compareRandom(t, img, want, 1, 100)
			compareBoundaries(t, img, want, 2<<20)
			compareConcurrent(t, img, want)
			holes, stored := walkRuns(t, img)
			if img.fixed && (holes != 0 || stored != 1) {
				t.Errorf("fixed disk mapped as %d holes and %d stored runs, want one stored run", holes, stored)
			}
			if !img.fixed && (holes == 0 || stored == 0) {
				t.Errorf("dynamic disk mapped as %d holes and %d stored runs, want both", holes, stored)
			}
			t.Logf("%s: %d hole runs, %d stored runs", tc.format, holes, stored)
		})
	}
}

// TestRealFixtures reads the VHDs other projects wrote.
func TestRealFixtures(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	dir := filepath.Join(testutil.RealFixtures(t), "log2timeline-dfvfs")

	t.Run("ext2.vhd", func(t *testing.T) {
		path := filepath.Join(dir, "ext2.vhd")
		want := testutil.MapFile(t, testutil.RawOracle(t, t.TempDir(), path, "vpc"))
		img := openPath(t, path)
		if img.Size() != 4212736 || img.Size() != qemuSize(t, path) || img.Format() != "vhd dynamic (2 MiB blocks)" {
			t.Fatalf("Size() = %d, Format() = %q", img.Size(), img.Format())
		}
		if w := img.Warnings(); len(w) != 0 {
			t.Errorf("unexpected warnings: %q", w)
		}
		compareAll(t, img, want)
		compareRandom(t, img, want, 2, 100)
		compareBoundaries(t, img, want, 2<<20)
		compareConcurrent(t, img, want)
		if holes, stored := walkRuns(t, img); holes != 1 || stored != 1 {
			t.Errorf("mapped as %d holes and %d stored runs, want 1 and 1 (block 0 allocated, 1-2 not)", holes, stored)
		}
	})

	t.Run("image-differential.vhd", func(t *testing.T) {
		path := filepath.Join(dir, "image-differential.vhd")
		b := testutil.ReadFile(t, path)
		if !Detect(bytes.NewReader(b), int64(len(b))) {
			t.Error("Detect = false")
		}
		_, err := openBytes(b)
		if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), `parent "image.vhd"`) {
			t.Fatalf("Open = %v, want ErrUnsupported naming the parent image.vhd", err)
		}
		t.Logf("Open: %v", err)
		out, qerr := exec.Command("qemu-img", "info", "-f", "vpc", path).CombinedOutput()
		if qerr == nil || !strings.Contains(string(out), "checksum") {
			t.Errorf("qemu-img 7.2 was expected to refuse the bad checksum: %v %s", qerr, out)
		}
	})
}

// TestBlockSizes builds dynamic disks with other block sizes (qemu-img
// always writes 2 MiB) and a shuffled block layout from the first 16 MiB of
// the shared disk (the MBR, the ext4 metadata and the first files), which
// keeps the five images and their oracles quick under the race detector.
//
// Below 4 KiB, qemu 7.2 gets the sector bitmap wrong: it divides the block
// size by 4096 before rounding up, so it sees a zero-byte bitmap and reads
// the bitmap as the block's first sector. There the oracle is the disk the
// image was built from, and qemu's differing answer is asserted too.
func TestBlockSizes(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	raw := testutil.MapFile(t, partitioned(t))[:16<<20]
	for _, bs := range []uint32{512, 2 << 10, 4 << 10, 64 << 10, 4 << 20} {
		name := byteSize(int64(bs))
		t.Run(strings.ReplaceAll(name, " ", ""), func(t *testing.T) {
			img := build(spec{data: raw, diskType: diskDynamic, blockSize: bs, shuffle: int64(bs)})
			dir := t.TempDir()
			path := testutil.WriteFile(t, filepath.Join(dir, "bs.vhd"), img)
			qemu := testutil.MapFile(t, testutil.RawOracle(t, dir, path, "vpc"))
			if qemuRight := bs >= 4096; bytes.Equal(qemu, raw) != qemuRight {
				t.Fatalf("qemu-img reading the built image equals its source: %v, expected %v", !qemuRight, qemuRight)
			}
			im := openPath(t, path)
			if f := fmt.Sprintf("vhd dynamic (%s blocks)", name); im.Format() != f {
				t.Errorf("Format() = %q, want %q", im.Format(), f)
			}
			if w := im.Warnings(); len(w) != 0 {
				t.Errorf("unexpected warnings: %q", w)
			}
			compareAll(t, im, raw)
			compareRandom(t, im, raw, int64(bs), 100)
			compareBoundaries(t, im, raw, int64(bs))
			compareConcurrent(t, im, raw)
			holes, stored := walkRuns(t, im)
			t.Logf("%d-byte blocks: %d hole runs, %d stored blocks", bs, holes, stored)
		})
	}
}

// TestVirtualSize checks the size rule per creator against qemu-img 7.2,
// and where this package deliberately differs from it, against the rule.
func TestVirtualSize(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	full := testutil.MapFile(t, partitioned(t))
	raw := full[:8<<20]
	const chs = 240 * 4 * 17 * 512 // 8355840, below 8 MiB
	for _, tc := range []struct {
		name     string
		s        spec
		size     int64
		warn     string
		qemuSame bool // qemu-img 7.2 agrees (it uses CHS for unknown creators)
	}{
		{"vpc dynamic", spec{creator: "vpc ", cyls: 240, heads: 4, spt: 17}, chs,
			`size from CHS 8355840 differs from current_size 8388608; using CHS as qemu does for creator "vpc "`, true},
		{"vpc fixed", spec{diskType: diskFixed, creator: "vpc ", cyls: 240, heads: 4, spt: 17}, chs,
			`using CHS as qemu does for creator "vpc "`, true},
		{"qemu dynamic", spec{creator: "qemu", cyls: 240, heads: 4, spt: 17}, chs,
			`using CHS as qemu does for creator "qemu"`, true},
		{"qemu maximal CHS", spec{creator: "qemu"}, 8 << 20, "", true},
		{"win dynamic", spec{creator: "win ", cyls: 240, heads: 4, spt: 17}, 8 << 20,
			`size from CHS 8355840 differs from current_size 8388608; using current_size for creator "win "`, true},
		{"tap fixed", spec{diskType: diskFixed, creator: "tap\x00", cyls: 240, heads: 4, spt: 17}, 8 << 20,
			`using current_size for creator "tap\x00"`, true},
		// qemu reads the footer at the file size rounded up to a sector,
		// so the data keeps a whole number of sectors.
		{"win fixed, current_size not whole sectors", spec{diskType: diskFixed, data: full[:8<<20+512], curSize: 8<<20 + 3}, 8 << 20,
			"not a whole number of sectors", true},
		{"vs dynamic", spec{creator: "vs  ", cyls: 240, heads: 4, spt: 17}, 8 << 20,
			`using current_size for creator "vs  "`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			if s.data == nil {
				s.data = raw
			}
			if s.diskType == 0 {
				s.diskType = diskDynamic
			}
			b := build(s)
			img, err := openBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			if img.Size() != tc.size {
				t.Fatalf("Size() = %d, want %d", img.Size(), tc.size)
			}
			w := strings.Join(img.Warnings(), "\n")
			if (tc.warn == "") != (w == "") || !strings.Contains(w, tc.warn) {
				t.Errorf("warnings %q, want one containing %q", w, tc.warn)
			}
			if !tc.qemuSame {
				return
			}
			dir := t.TempDir()
			path := testutil.WriteFile(t, filepath.Join(dir, "size.vhd"), b)
			if q := qemuSize(t, path); q != tc.size {
				t.Fatalf("qemu-img reports %d bytes, want %d", q, tc.size)
			}
			want := testutil.MapFile(t, testutil.RawOracle(t, dir, path, "vpc"))
			compareAll(t, img, want)
			compareBoundaries(t, img, want, 2<<20)
		})
	}
}

// TestShortFooter reads a fixed disk with the 511-byte footer of early
// Virtual PC, which qemu cannot read, against the data it was built from.
func TestShortFooter(t *testing.T) {
	raw := testutil.MapFile(t, partitioned(t))[:3<<20]
	b := build(spec{data: raw, diskType: diskFixed, short: true})
	if len(b) != len(raw)+shortFooterSize {
		t.Fatalf("built %d bytes", len(b))
	}
	if !Detect(bytes.NewReader(b), int64(len(b))) {
		t.Error("Detect = false")
	}
	img, err := openBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(img.Warnings(), "\n"); !strings.Contains(w, "511-byte") {
		t.Errorf("warnings %q do not mention the 511-byte footer", w)
	}
	compareAll(t, img, raw)
	compareBoundaries(t, img, raw, 64<<10)
}

// TestChecksums damages checksums: reading goes on with a warning, and the
// data must match qemu-img's reading of a repaired copy (qemu-img 7.2
// refuses the damaged one).
func TestChecksums(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	src := testutil.WriteFile(t, filepath.Join(dir, "small.raw"), testutil.MapFile(t, partitioned(t))[:6<<20])
	dyn := testutil.ReadFile(t, testutil.Convert(t, dir, src, "vpc", ""))
	fixed := testutil.ReadFile(t, testutil.Convert(t, dir, src, "vpc", "subformat=fixed"))
	end := func(b []byte) int { return len(b) - footerSize }
	for _, tc := range []struct {
		name   string
		base   []byte
		damage func(b []byte) []byte
		repair bool // oracle from the damaged copy with checksums recomputed; else from base
		warn   string
	}{
		{"both footer copies", dyn, func(b []byte) []byte {
			setBoth(b, 24, func(p []byte) { be.PutUint32(p, 12345) }) // timestamp
			return b
		}, true, "footer at the end has a bad checksum"},
		{"end footer garbled", dyn, func(b []byte) []byte {
			be.PutUint64(b[end(b)+48:], 1<<40) // current_size
			b[end(b)+60] = 0x77                // disk type
			return b
		}, false, "using the copy at offset 0"},
		{"copy at 0 garbled", dyn, func(b []byte) []byte {
			be.PutUint64(b[48:], 1<<40)
			return b
		}, false, "copy at offset 0 has a bad checksum"},
		{"dynamic header", dyn, func(b []byte) []byte {
			b[512+dynChecksumOff+3] ^= 0x55
			return b
		}, false, "dynamic header has a bad checksum"},
		{"end footer cut off", dyn, func(b []byte) []byte {
			return b[:end(b)]
		}, false, "no footer at the end"},
		{"fixed footer", fixed, func(b []byte) []byte {
			be.PutUint32(b[end(b)+24:], 12345)
			return b
		}, true, "footer at the end has a bad checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.damage(append([]byte(nil), tc.base...))
			dir := t.TempDir()
			oracleSrc := tc.base
			if tc.repair {
				oracleSrc = append([]byte(nil), b...)
				fixSums(oracleSrc)
				path := testutil.WriteFile(t, filepath.Join(dir, "damaged.vhd"), b)
				if out, err := exec.Command("qemu-img", "info", "-f", "vpc", path).CombinedOutput(); err == nil {
					t.Errorf("qemu-img 7.2 opened the damaged image: %s", out)
				}
			}
			want := testutil.MapFile(t, testutil.RawOracle(t, dir, testutil.WriteFile(t, filepath.Join(dir, "repaired.vhd"), oracleSrc), "vpc"))
			img, err := openBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			if w := strings.Join(img.Warnings(), "\n"); !strings.Contains(w, tc.warn) {
				t.Errorf("warnings %q, want one containing %q", w, tc.warn)
			}
			compareAll(t, img, want)
		})
	}
}

// TestMapRuns checks the runs themselves on a small built disk: blocks 0
// and 5 hold data, 1-4 and 6-7 do not, and the disk ends inside block 7.
func TestMapRuns(t *testing.T) {
	const bs = 4096
	data := make([]byte, 7*bs+1024)
	data[10], data[5*bs+7] = 1, 2
	b := build(spec{data: data, diskType: diskDynamic, blockSize: bs})
	img, err := openBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	for _, tc := range []struct {
		off       int64
		kind      blockmap.Kind
		start, ln int64
	}{
		{0, blockmap.Stored, 0, bs},
		{bs - 1, blockmap.Stored, 0, bs},
		{bs, blockmap.Hole, bs, 4 * bs},
		{3*bs + 5, blockmap.Hole, bs, 4 * bs},
		{5 * bs, blockmap.Stored, 5 * bs, bs},
		{6 * bs, blockmap.Hole, 6 * bs, size - 6*bs},
		{size - 1, blockmap.Hole, 6 * bs, size - 6*bs},
	} {
		r, err := img.Map(tc.off)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != tc.kind || r.Off != tc.start || r.Len != tc.ln {
			t.Errorf("Map(%d) = %v [%d, +%d), want %v [%d, +%d)", tc.off, r.Kind, r.Off, r.Len, tc.kind, tc.start, tc.ln)
		}
	}
	for _, off := range []int64{-1, size, 1 << 62} {
		if _, err := img.Map(off); err == nil {
			t.Errorf("Map(%d) outside the disk succeeded", off)
		}
	}
	compareAll(t, img, data)
	if n := testing.AllocsPerRun(100, func() { img.Map(3 * bs) }); n != 0 {
		t.Errorf("Map allocates %v times per call", n)
	}
}

func TestDetect(t *testing.T) {
	data := bytes.Repeat([]byte{0xa5}, 4096)
	dyn := build(spec{data: data, diskType: diskDynamic, blockSize: 512})
	fixed := build(spec{data: data, diskType: diskFixed})
	short := build(spec{data: data, diskType: diskFixed, short: true})
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"dynamic", dyn, true},
		{"dynamic without the copy at 0", append(make([]byte, 512), dyn[512:]...), true},
		{"fixed", fixed, true},
		{"511-byte footer", short, true},
		{"data", data, false},
		{"empty", nil, false},
		{"cookie only", []byte(cookieFooter), true},
		{"7 bytes", []byte("conecti"), false},
	} {
		if got := Detect(bytes.NewReader(tc.b), int64(len(tc.b))); got != tc.want {
			t.Errorf("%s: Detect = %v, want %v", tc.name, got, tc.want)
		}
	}
}
