package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// sparseImage is a fuzz input read as an image file: a size and chunks of
// bytes at offsets, zeros elsewhere. A VHDX needs at least a few MiB, most
// of it zeros, and this keeps the inputs (and what the fuzzer mutates) to
// the few KiB that matter.
//
// Encoding: u32 size, then repeated {u32 offset, u16 length, bytes}.
type sparseImage struct {
	size    int64
	chunks  []sparseChunk
	outside atomic.Bool // a read reached outside [0, size)
}

type sparseChunk struct {
	off int64
	b   []byte
}

func decodeSparse(data []byte) *sparseImage {
	s := &sparseImage{}
	if len(data) < 4 {
		return s
	}
	s.size = int64(binary.LittleEndian.Uint32(data))
	data = data[4:]
	for len(data) >= 6 {
		off := int64(binary.LittleEndian.Uint32(data))
		n := min(int(binary.LittleEndian.Uint16(data[4:])), len(data)-6)
		s.chunks = append(s.chunks, sparseChunk{off, data[6 : 6+n]})
		data = data[6+n:]
	}
	return s
}

// encodeSparse turns an image file into a fuzz input, keeping its non-zero
// bytes (runs closer than 16 bytes are merged).
func encodeSparse(b []byte) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(b)))
	for i := 0; i < len(b); {
		if b[i] == 0 {
			i++
			continue
		}
		end, zeros := i, 0
		for j := i; j < len(b) && j-i < 65535 && zeros < 16; j++ {
			if b[j] == 0 {
				zeros++
			} else {
				zeros, end = 0, j+1
			}
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(i))
		out = binary.LittleEndian.AppendUint16(out, uint16(end-i))
		out = append(out, b[i:end]...)
		i = end
	}
	return out
}

func (s *sparseImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.size {
		s.outside.Store(true)
	}
	if off < 0 || off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	clear(p[:n])
	end := off + int64(n)
	for _, c := range s.chunks {
		lo, hi := max(c.off, off), min(c.off+int64(len(c.b)), end)
		if lo < hi {
			copy(p[lo-off:hi-off], c.b[lo-c.off:])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// withCRCs returns s with valid CRCs on whatever looks like a header, a
// region table or a log entry, so that mutations get past the checksums
// to the parsing behind them.
func withCRCs(s *sparseImage) *sparseImage {
	fixed := &sparseImage{size: s.size, chunks: slices.Clone(s.chunks)}
	fix := func(off, n int64, sig string) {
		if n < 8 || off+n > s.size {
			return
		}
		b := make([]byte, n)
		s.ReadAt(b, off)
		if string(b[:4]) != sig {
			return
		}
		binary.LittleEndian.PutUint32(b[4:], 0)
		fixed.chunks = append(fixed.chunks, sparseChunk{off + 4, binary.LittleEndian.AppendUint32(nil, crc32.Checksum(b, castagnoli))})
	}
	fix(header1Offset, headerSize, "head")
	fix(header2Offset, headerSize, "head")
	fix(regionTable1, regionTableSize, "regi")
	fix(regionTable2, regionTableSize, "regi")
	for _, c := range s.chunks {
		if c.off%logSector == 0 && len(c.b) >= 12 && string(c.b[:4]) == "loge" {
			if n := int64(binary.LittleEndian.Uint32(c.b[8:])); n >= logSector && n%logSector == 0 && n <= mib {
				fix(c.off, n, "loge")
			}
		}
	}
	return fixed
}

// exercise opens s, as a child when allowParent, and, if it opens, maps
// and reads at a few offsets. Every failure must carry one of the
// package's sentinels.
func exercise(t *testing.T, s *sparseImage, allowParent bool) {
	sentinel := func(what string, err error) {
		if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
			t.Fatalf("%s: error without a sentinel: %v", what, err)
		}
	}
	defer func() {
		if s.outside.Load() {
			t.Fatal("read outside the member")
		}
	}()
	img, err := Open(s, s.size, Options{Name: "fuzz", AllowParent: allowParent})
	if err != nil {
		sentinel("Open", err)
		return
	}
	if p := img.Parent(); p != nil {
		if !allowParent {
			t.Fatal("a child opened without AllowParent")
		}
		if err := p.Check(img); err != nil {
			sentinel("Check", err)
		}
	}
	size := img.Size()
	if size == 0 {
		return
	}
	buf := make([]byte, 64<<10)
	for _, start := range []int64{0, size / 3, size / 2, size - 1, max(0, size-int64(len(buf))/2)} {
		off := start
		for range 4 {
			r, err := img.Map(off)
			if err != nil {
				sentinel("Map", err)
				break
			}
			if err := r.Check(off, size); err != nil {
				t.Fatalf("Map(%d) = %+v: %v", off, r, err)
			}
			if off = r.End(); off >= size {
				break
			}
		}
		if _, err := blockmap.ReadAt(img, buf, start); err != nil && err != io.EOF {
			sentinel("ReadAt", err)
		}
	}
}

// fuzzSeeds are small images made by qemu-img and qemu-io (when they are
// installed), encoded sparsely: a dynamic disk with some data, a fixed
// disk, and a dirty-log copy of the first.
func fuzzSeeds(f testing.TB) [][]byte {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return nil
	}
	if _, err := exec.LookPath("qemu-io"); err != nil {
		return nil
	}
	// Not f.TempDir: fuzz workers build the seeds too, and are killed
	// before a test's cleanup would run.
	dir, err := os.MkdirTemp("", "vhdx-seeds-")
	if err != nil {
		f.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var seeds [][]byte
	dyn := filepath.Join(dir, "dyn.vhdx")
	testutil.QemuImg(f, "create", "-q", "-f", "vhdx", "-o", "block_size=1M", dyn, "5M")
	if out, err := execOut("qemu-io", "-c", "write -P 0x5a 4096 512", "-c", "write -P 0xa5 3M 100", dyn); err != nil {
		f.Fatalf("qemu-io: %v\n%s", err, out)
	}
	fixed := filepath.Join(dir, "fixed.vhdx")
	testutil.QemuImg(f, "create", "-q", "-f", "vhdx", "-o", "subformat=fixed,block_size=1M", fixed, "2M")
	for _, p := range []string{dyn, fixed} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, encodeSparse(b))
		if p == dyn {
			l := layoutOf(f, b)
			e := buildLogEntry(logEntryOpts{seq: 9, flushed: uint64(len(b)), last: uint64(len(b)), guid: testLogGUID},
				[]logDesc{
					{off: uint64(l.batOff), data: bytes.Clone(b[l.batOff : l.batOff+logSector])},
					{off: l.blockOff(f, 3) + 8192, zeroLen: 8192},
				})
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
			seeds = append(seeds, encodeSparse(b))
		}
	}
	return seeds
}

func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	for _, s := range diffSeeds() {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add(encodeSparse([]byte("vhdxfile")))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := decodeSparse(data)
		for _, allow := range []bool{false, true} {
			exercise(t, s, allow)
			exercise(t, withCRCs(s), allow)
		}
	})
}

// TestFuzzSeeds checks that the qemu-made seeds are valid images (the
// dirty one replays its log), so the fuzzer starts from real structures.
func TestFuzzSeeds(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "qemu-io")
	seeds := fuzzSeeds(t)
	if len(seeds) != 3 {
		t.Fatalf("%d seeds", len(seeds))
	}
	for i, seed := range seeds {
		s := decodeSparse(seed)
		img, err := Open(s, s.size, Options{Name: "seed"})
		if err != nil {
			t.Fatalf("seed %d (%d bytes): %v", i, len(seed), err)
		}
		replayed := len(img.view.ov.ext) > 0
		if replayed != (i == 1) {
			t.Errorf("seed %d: replayed %v; warnings %q", i, replayed, img.Warnings())
		}
		kinds := walkRuns(t, img)
		t.Logf("seed %d: %d bytes, %s, runs %v", i, len(seed), img.Format(), kinds)
	}
}

// TestSparseEncoding round-trips the fuzz input encoding over a sparse
// buffer with runs of every kind: long ones that must be split, short
// gaps that are merged, isolated bytes and a non-zero last byte.
func TestSparseEncoding(t *testing.T) {
	b := make([]byte, 256<<10)
	rng := rand.New(rand.NewSource(8))
	rng.Read(b[1000:70000])
	rng.Read(b[70010:70020])
	for i := 100000; i < 200000; i += 37 + rng.Intn(40) {
		b[i] = byte(1 + rng.Intn(255))
	}
	b[len(b)-1] = 1
	enc := encodeSparse(b)
	s := decodeSparse(enc)
	got := make([]byte, len(b))
	if n, err := s.ReadAt(got, 0); n != len(b) || err != nil {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if !bytes.Equal(got, b) {
		t.Fatalf("decoded image differs at %d", firstDiff(got, b))
	}
	if n, err := s.ReadAt(got, int64(len(b))-10); n != 10 || err != io.EOF {
		t.Fatalf("ReadAt past the end: %d, %v", n, err)
	}
	t.Logf("%d-byte image encoded in %d bytes", len(b), len(enc))
}

// diffSeeds are generated differencing children (no tool is needed):
// blocks in every state, partial blocks with their sector bitmap, and one
// whose partial block's chunk has no bitmap.
func diffSeeds() [][]byte {
	_, child := diffPair(5*mib, 13)
	child.small = true
	dropped := child
	dropped.dropSB = map[int64]bool{0: true}
	return [][]byte{encodeSparse(generate(child)), encodeSparse(generate(dropped))}
}
