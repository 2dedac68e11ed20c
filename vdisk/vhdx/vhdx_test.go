package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// workDir holds the images the tests build with qemu-img, shared by all
// tests of the package and removed when they finish.
var workDir string

// TestMain keeps every temporary file of the package's tests (the shared
// disk, the images, qemu-img's outputs) under one folder, in memory when
// /dev/shm is available: qemu-img syncs the file while it replays a log,
// and on a disk shared with other jobs each sync can take seconds.
func TestMain(m *testing.M) {
	// Fuzz workers are killed when fuzzing ends, so they would leave the
	// folder behind; they need none of the shared images anyway.
	for _, a := range os.Args {
		if strings.HasPrefix(a, "-test.fuzzworker") {
			os.Exit(m.Run())
		}
	}
	parent := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		parent = "/dev/shm"
	}
	dir, err := os.MkdirTemp(parent, "vhdx-test-")
	if err != nil {
		dir, err = os.MkdirTemp("", "vhdx-test-")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", dir)
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	imgMu    sync.Mutex
	imgCache = map[string]string{}
)

// qemuImage converts the shared partitioned disk to VHDX with the given -o
// options, once per test process.
func qemuImage(t testing.TB, opts string) string {
	t.Helper()
	testutil.RequireTool(t, "qemu-img")
	src := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	imgMu.Lock()
	defer imgMu.Unlock()
	if p, ok := imgCache[opts]; ok {
		return p
	}
	p := testutil.Convert(t, workDir, src, "vhdx", opts)
	imgCache[opts] = p
	return p
}

// rawFile is a raw disk: qemu-img's decoding of an image, read in pieces
// so that the tests never hold a whole disk in memory (under the race
// detector a 64 MiB allocation alone costs most of a second).
type rawFile struct {
	r    io.ReaderAt
	size int64
}

// get reads the bytes at off into p and returns them, short at the end.
func (w rawFile) get(t testing.TB, p []byte, off int64) []byte {
	t.Helper()
	n := max(0, min(int64(len(p)), w.size-off))
	if n == 0 {
		return p[:0]
	}
	if _, err := w.r.ReadAt(p[:n], off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return p[:n]
}

// same reports whether two raw disks hold the same bytes.
func (w rawFile) same(t testing.TB, o rawFile) bool {
	t.Helper()
	if w.size != o.size {
		return false
	}
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < w.size; off += int64(len(a)) {
		if !bytes.Equal(w.get(t, a, off), o.get(t, b, off)) {
			return false
		}
	}
	return true
}

func rawBytes(b []byte) rawFile { return rawFile{bytes.NewReader(b), int64(len(b))} }

// oracle returns qemu-img's raw decoding of img.
func oracle(t testing.TB, img string) rawFile {
	t.Helper()
	f, err := os.Open(testutil.RawOracle(t, t.TempDir(), img, "vhdx"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return rawFile{f, st.Size()}
}

// openFile opens the VHDX at path and fails the test on error.
func openFile(t testing.TB, path string) *Image {
	t.Helper()
	img, err := openFileErr(t, path)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func openFileErr(t testing.TB, path string) (*Image, error) {
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
	return Open(f, st.Size(), Options{Name: filepath.Base(path)})
}

// Buffers of the comparisons, allocated once because large allocations
// are slow under the race detector. Tests using them do not run in
// parallel.
var (
	gotBuf  = make([]byte, 1<<20)
	wantBuf = make([]byte, 1<<20)
)

// compareAll reads the whole image in 1 MiB chunks and compares it with
// want byte for byte. It returns the number of bytes compared.
func compareAll(t testing.TB, img *Image, want rawFile) int64 {
	t.Helper()
	if img.Size() != want.size {
		t.Fatalf("size %d, qemu-img says %d", img.Size(), want.size)
	}
	for off := int64(0); off < img.Size(); off += int64(len(gotBuf)) {
		n, err := blockmap.ReadAt(img, gotBuf, off)
		if err != nil && err != io.EOF {
			t.Fatalf("read at %d: %v", off, err)
		}
		if w := want.get(t, wantBuf, off); !bytes.Equal(gotBuf[:n], w) {
			t.Fatalf("bytes at %d differ from qemu-img (first difference at %d)", off, off+firstDiff(gotBuf[:n], w))
		}
	}
	return img.Size()
}

func firstDiff(a, b []byte) int64 {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return int64(i)
		}
	}
	return int64(min(len(a), len(b)))
}

// compareAt compares one read of n bytes at off, past the end included.
func compareAt(t testing.TB, img *Image, want rawFile, off, n int64) {
	t.Helper()
	buf := gotBuf[:n]
	got, err := blockmap.ReadAt(img, buf, off)
	w := want.get(t, wantBuf[:n], off)
	if got != len(w) {
		t.Fatalf("read of %d at %d returned %d bytes (%v), want %d", n, off, got, err, len(w))
	}
	if int64(len(w)) < n && err != io.EOF {
		t.Fatalf("short read of %d at %d returned %v, want io.EOF", n, off, err)
	}
	if int64(len(w)) == n && err != nil {
		t.Fatalf("read of %d at %d: %v", n, off, err)
	}
	if !bytes.Equal(buf[:got], w) {
		t.Fatalf("read of %d at %d differs from qemu-img at +%d", n, off, firstDiff(buf[:got], w))
	}
}

// compareRandom makes count seeded reads of random offsets and lengths
// (up to 512 KiB).
func compareRandom(t testing.TB, img *Image, want rawFile, seed int64, count int) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	for range count {
		compareAt(t, img, want, rng.Int63n(img.Size()), 1+rng.Int63n(512<<10))
	}
}

// compareBoundaries reads across every block boundary and at the very end.
func compareBoundaries(t testing.TB, img *Image, want rawFile) int {
	t.Helper()
	reads := 0
	for b := img.blockSize; b < img.Size(); b += img.blockSize {
		for _, d := range []int64{1, 511, 4096, 65536 + 7} {
			compareAt(t, img, want, b-d, 2*d)
			reads++
		}
	}
	compareAt(t, img, want, img.Size()-4097, 4097)
	compareAt(t, img, want, img.Size()-100, 4096) // runs past the end
	return reads + 2
}

// compareConcurrent has several goroutines read random ranges at once.
func compareConcurrent(t *testing.T, img *Image, want rawFile) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(100 + g)))
			buf, wbuf := make([]byte, 256<<10), make([]byte, 256<<10)
			for range 50 {
				off := rng.Int63n(img.Size())
				n := 1 + rng.Intn(len(buf))
				got, err := blockmap.ReadAt(img, buf[:n], off)
				if err != nil && err != io.EOF {
					errs <- fmt.Errorf("goroutine %d: read at %d: %v", g, off, err)
					return
				}
				w := wbuf[:min(int64(n), want.size-off)]
				if _, err := want.r.ReadAt(w, off); err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:got], w) {
					errs <- fmt.Errorf("goroutine %d: read of %d at %d differs", g, n, off)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// walkRuns maps the whole disk run by run, checks every run against the
// Mapper contract and returns the bytes of each kind.
func walkRuns(t testing.TB, img *Image) map[blockmap.Kind]int64 {
	t.Helper()
	kinds := map[blockmap.Kind]int64{}
	for off := int64(0); off < img.Size(); {
		r, err := img.Map(off)
		if err != nil {
			t.Fatalf("Map(%d): %v", off, err)
		}
		if err := r.Check(off, img.Size()); err != nil {
			t.Fatalf("Map(%d) = %+v: %v", off, r, err)
		}
		kinds[r.Kind] += r.End() - off
		off = r.End()
	}
	return kinds
}

func TestQemuImages(t *testing.T) {
	for _, tc := range []struct {
		opts   string
		format string
		empty  bool // expect blocks without data (holes or zeros)
	}{
		{"", "vhdx dynamic (8 MiB blocks)", true},
		{"subformat=fixed", "vhdx fixed", true}, // qemu marks all-zero blocks ZERO, even here
		{"block_size=1M", "vhdx dynamic (1 MiB blocks)", true},
		{"block_size=256M", "vhdx dynamic (256 MiB blocks)", false},
		{"block_state_zero=off", "vhdx dynamic (8 MiB blocks)", true},
		{"log_size=4M,block_size=2M", "vhdx dynamic (2 MiB blocks)", true},
	} {
		name := tc.opts
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			path := qemuImage(t, tc.opts)
			want := oracle(t, path)
			img := openFile(t, path)
			if got := img.Format(); got != tc.format {
				t.Errorf("Format() = %q, want %q", got, tc.format)
			}
			if w := img.Warnings(); len(w) != 0 {
				t.Errorf("unexpected warnings on a clean image: %q", w)
			}
			n := compareAll(t, img, want)
			compareRandom(t, img, want, 1, 200)
			reads := compareBoundaries(t, img, want)
			compareConcurrent(t, img, want)
			kinds := walkRuns(t, img)
			if kinds[blockmap.Stored] == 0 {
				t.Error("no stored data mapped")
			}
			if (kinds[blockmap.Hole]+kinds[blockmap.Zero] > 0) != tc.empty {
				t.Errorf("runs %v; expected blocks without data: %v", kinds, tc.empty)
			}
			if img.fixed && kinds[blockmap.Hole] > 0 {
				t.Errorf("fixed disk has unallocated blocks: %v", kinds)
			}
			t.Logf("%s: %d bytes compared whole, 200 random reads, %d boundary reads; runs %v", tc.format, n, reads, kinds)
		})
	}
}

// TestPartialLastBlock uses a disk whose size is not a multiple of the
// block size, so the last block is only partly inside the disk.
func TestPartialLastBlock(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	src := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tail := make([]byte, 512<<10+4096)
	rand.New(rand.NewSource(7)).Read(tail)
	raw = append(raw, tail...)
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd.raw")
	if err := os.WriteFile(odd, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []string{"", "subformat=fixed"} {
		t.Run("opts="+opts, func(t *testing.T) {
			path := testutil.Convert(t, dir, odd, "vhdx", opts)
			want := oracle(t, path)
			if !want.same(t, rawBytes(raw)) {
				t.Fatal("qemu-img does not round-trip the source; the oracle is unusable")
			}
			img := openFile(t, path)
			if img.Size()%img.blockSize == 0 {
				t.Fatalf("size %d is a multiple of the block size %d", img.Size(), img.blockSize)
			}
			compareAll(t, img, want)
			compareBoundaries(t, img, want)
			walkRuns(t, img)
		})
	}
}

// TestLogicalSector4096 rewrites the logical sector size of a qemu image
// to 4096. qemu-img 7.2 can neither create nor read such files (it
// supports 512 only), so the oracle is qemu-img's reading of the original:
// with eight blocks the BAT layout does not depend on the sector size, so
// the data must not change.
func TestLogicalSector4096(t *testing.T) {
	base := qemuImage(t, "")
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	off := itemFileOffset(t, b, itemLogicalSector)
	binary.LittleEndian.PutUint32(b[off:], 4096)
	path := filepath.Join(t.TempDir(), "ls4096.vhdx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := execOut("qemu-img", "info", path); err == nil {
		t.Logf("qemu-img now reads 4096-byte logical sectors; compare with it too:\n%s", out)
	}
	want := oracle(t, base)
	img := openFile(t, path)
	if img.chunkRatio != 4096*(1<<23)/img.blockSize {
		t.Fatalf("chunk ratio %d, not that of 4096-byte sectors", img.chunkRatio)
	}
	compareAll(t, img, want)
	compareRandom(t, img, want, 3, 100)
}

// TestPagedBAT forces the paged BAT with a two-page LRU on the image with
// the most blocks, so pages are evicted and reloaded under concurrency.
func TestPagedBAT(t *testing.T) {
	path := qemuImage(t, "block_size=1M")
	want := oracle(t, path)
	saved := batLimits
	batLimits.whole, batLimits.pageSize, batLimits.pageCount = 4, 8, 2
	t.Cleanup(func() { batLimits = saved })
	img := openFile(t, path)
	if img.bat.whole != nil {
		t.Fatal("BAT loaded whole despite the limit")
	}
	compareAll(t, img, want)
	compareRandom(t, img, want, 5, 200)
	compareConcurrent(t, img, want)
	if n := img.bat.lru.Len(); n > 2 {
		t.Fatalf("LRU holds %d pages, limit 2", n)
	}
}

// TestSectorBitmapInterleave needs more payload blocks than one chunk
// (16 blocks of 256 MiB with 512-byte sectors), so that sector bitmap
// entries sit between payload entries in the BAT. qemu-io writes data on
// both sides of the first bitmap entry; windows of the disk are compared
// with qemu-img reading the same windows through a raw offset filter.
func TestSectorBitmapInterleave(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "qemu-io")
	src := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	path := filepath.Join(t.TempDir(), "big.vhdx")
	testutil.QemuImg(t, "create", "-q", "-f", "vhdx", "-o", "block_size=256M", path, "5G")
	writes := []string{
		"write -P 0x11 0 1M",
		"write -P 0x22 4095M 2M",        // blocks 15 and 16, either side of BAT entry 16
		"write -P 0x33 4352M 1M",        // block 17
		"write -P 0x44 5119M 1M",        // the last block, BAT index 20
		"write -s " + src + " 4200M 4M", // real content in block 16
	}
	args := []string{}
	for _, w := range writes {
		args = append(args, "-c", w)
	}
	args = append(args, path)
	if out, err := execOut("qemu-io", args...); err != nil {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	img := openFile(t, path)
	if img.chunkRatio != 16 || img.bat.n != 21 {
		t.Fatalf("chunk ratio %d, %d BAT entries; want 16 and 21 (20 payload blocks)", img.chunkRatio, img.bat.n)
	}
	const M = 1 << 20
	for _, w := range [][2]int64{{0, 2 * M}, {4094 * M, 4 * M}, {4199 * M, 6 * M}, {4351 * M, 3 * M}, {5118 * M, 2 * M}, {8191 * M / 2, M}} {
		want := windowOracle(t, path, w[0], w[1])
		buf := make([]byte, w[1])
		if _, err := blockmap.ReadAt(img, buf, w[0]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, want) {
			t.Fatalf("window [%d, +%d) differs from qemu-img at +%d", w[0], w[1], firstDiff(buf, want))
		}
	}
	kinds := walkRuns(t, img)
	if kinds[blockmap.Stored] != 5*256*M {
		t.Fatalf("stored bytes %d, want 5 blocks: %v", kinds[blockmap.Stored], kinds)
	}
}

// TestOutOfOrderBlocks writes the blocks of a dynamic disk in a scrambled
// order, so neighbouring blocks are not neighbours in the file and runs
// must stop at each discontinuity.
func TestOutOfOrderBlocks(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "qemu-io")
	src := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	path := filepath.Join(t.TempDir(), "scrambled.vhdx")
	testutil.QemuImg(t, "create", "-q", "-f", "vhdx", "-o", "block_size=1M", path, "8M")
	args := []string{"-c", "write -s " + src + " 5M 1M", "-c", "write -P 0x11 1M 2M", "-c", "write -P 0x22 6M 4k",
		"-c", "write -P 0x33 0 1M", "-c", "write -P 0x44 7M 1M", path}
	if out, err := execOut("qemu-io", args...); err != nil {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	want := oracle(t, path)
	img := openFile(t, path)
	compareAll(t, img, want)
	compareBoundaries(t, img, want)
	var stored []blockmap.Run
	for off := int64(0); off < img.Size(); {
		r, err := img.Map(off)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind == blockmap.Stored {
			stored = append(stored, r)
		}
		off = r.End()
	}
	// Blocks 1 and 2 were allocated together and form one run; the others
	// stand alone because their neighbours lie elsewhere in the file.
	if len(stored) != 5 {
		t.Fatalf("%d stored runs, want 5: %+v", len(stored), stored)
	}
	for i := 1; i < len(stored); i++ {
		if stored[i].Off == stored[i-1].End() && stored[i].Phys == stored[i-1].Phys+stored[i-1].Len {
			t.Errorf("runs %d and %d are contiguous and should have been one", i-1, i)
		}
	}
}

// windowOracle reads [off, off+n) of a VHDX with qemu-img, through a raw
// format node with an offset and size over the vhdx node.
func windowOracle(t testing.TB, path string, off, n int64) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), fmt.Sprintf("win-%d.raw", off))
	opts := fmt.Sprintf("driver=raw,offset=%d,size=%d,file.driver=vhdx,file.file.driver=file,file.file.filename=%s", off, n, path)
	testutil.QemuImg(t, "convert", "-O", "raw", "--image-opts", opts, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDetect(t *testing.T) {
	path := qemuImage(t, "")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if !Detect(f, st.Size()) {
		t.Error("Detect rejects a qemu-img VHDX")
	}
	for _, b := range [][]byte{nil, []byte("vhdxfil"), []byte("vhdxfilf"), []byte("conectix")} {
		if Detect(bytes.NewReader(b), int64(len(b))) {
			t.Errorf("Detect accepts %q", b)
		}
	}
}

// TestRealFixtures checks every file of the real-world fixtures: a VHDX
// must match qemu-img, anything else must be neither detected nor opened.
func TestRealFixtures(t *testing.T) {
	dir := testutil.RealFixtures(t)
	vhdx, other := 0, 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if !Detect(f, fi.Size()) {
			other++
			if _, err := Open(f, fi.Size(), Options{Name: p}); !errors.Is(err, blockmap.ErrCorrupt) {
				t.Errorf("%s: Open of a non-VHDX returned %v, want ErrCorrupt", p, err)
			}
			return nil
		}
		vhdx++
		img, err := Open(f, fi.Size(), Options{Name: p})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		compareAll(t, img, oracle(t, p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d VHDX fixtures compared with qemu-img, %d other files rejected", vhdx, other)
}
