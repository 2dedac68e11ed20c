package zstdindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testData returns n bytes that compress somewhat: text-like runs with
// random stretches, deterministic in seed.
func testData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	words := []string{"appliance ", "disk ", "ovf:", "<Envelope>", "vmdk ", "sector ", "\n", "0123456789", "zero "}
	var b bytes.Buffer
	for b.Len() < n {
		if rng.IntN(20) == 0 {
			r := make([]byte, rng.IntN(2000))
			for i := range r {
				r[i] = byte(rng.Uint32())
			}
			b.Write(r)
			continue
		}
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

// cli compresses data with the named CLI (zstd or pzstd), reading a file
// or, with stdin, a pipe (then zstd cannot write the content size).
func cli(t testing.TB, data []byte, stdin bool, prog string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		t.Skip(prog + " not installed")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var cmd *exec.Cmd
	if stdin {
		cmd = exec.Command(prog, append(append([]string{"-q", "-c"}, args...), "-")...)
		cmd.Stdin = bytes.NewReader(data)
		var o bytes.Buffer
		cmd.Stdout = &o
		var e bytes.Buffer
		cmd.Stderr = &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v: %s", prog, args, err, e.String())
		}
		return o.Bytes()
	}
	cmd = exec.Command(prog, append(append([]string{"-q", "-f"}, args...), in, "-o", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", prog, args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zstdAccepts reports whether zstd -t accepts the file.
func zstdAccepts(file []byte) bool {
	cmd := exec.Command("zstd", "-t", "-q", "-q")
	cmd.Stdin = bytes.NewReader(file)
	return cmd.Run() == nil
}

func compare(t *testing.T, z *Reader, want []byte, reads int) {
	t.Helper()
	if z.Size() != int64(len(want)) {
		t.Fatalf("Size %d, want %d", z.Size(), len(want))
	}
	rng := rand.New(rand.NewPCG(uint64(len(want)), 2))
	for i := 0; i < reads && len(want) > 0; i++ {
		off := rng.Int64N(int64(len(want)))
		n := rng.IntN(300 << 10)
		p := make([]byte, n)
		k, err := z.ReadAt(p, off)
		end := min(off+int64(n), int64(len(want)))
		if k != int(end-off) || (err != nil && err != io.EOF) || (end == off+int64(n) && err != nil) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, k, err)
		}
		if !bytes.Equal(p[:k], want[off:end]) {
			t.Fatalf("ReadAt(%d, %d): wrong bytes", n, off)
		}
	}
	got, err := io.ReadAll(io.NewSectionReader(z, 0, z.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("sequential read: wrong bytes")
	}
	if k, err := z.ReadAt(make([]byte, 1), z.Size()); k != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v", k, err)
	}
}

func open(t *testing.T, file []byte, opt Options) *Reader {
	t.Helper()
	z, err := Open(bytes.NewReader(file), int64(len(file)), opt)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestCLI(t *testing.T) {
	small := testData(100<<10, 1)
	big := testData(scaled(12<<20), 2)
	cases := []struct {
		name   string
		data   []byte
		stdin  bool
		prog   string
		args   []string
		frames int // -1: more than one
	}{
		{"zstd", big, false, "zstd", []string{"-3"}, 1},
		{"zstd -T0 -B1MiB", big, false, "zstd", []string{"-T0", "-B1MiB"}, 1},
		{"zstd pipe", big, true, "zstd", []string{"-1"}, 1},
		{"zstd pipe small", small, true, "zstd", []string{"--no-check"}, 1},
		{"zstd small", small, false, "zstd", []string{"-19"}, 1},
		{"pzstd", big, false, "pzstd", []string{"-p", "2", "-1"}, -1},
		{"pzstd pipe", big, true, "pzstd", []string{"-p", "2", "-1"}, -1},
		{"random", randomBytes(300 << 10), false, "zstd", nil, 1},
		{"empty", nil, false, "zstd", nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := cli(t, c.data, c.stdin, c.prog, c.args...)
			var progress int
			z := open(t, file, Options{Progress: func(done, total int64) {
				if done > total {
					t.Errorf("progress %d of %d", done, total)
				}
				progress++
			}})
			n := len(z.Frames())
			if c.frames >= 0 && n != c.frames || c.frames < 0 && n < 2 {
				t.Errorf("%d frames, want %d", n, c.frames)
			}
			t.Logf("%d frames, largest %d, %d progress calls", n, largest(z), progress)
			compare(t, z, c.data, 40)
		})
	}
}

func largest(z *Reader) int64 {
	var m int64
	for _, f := range z.Frames() {
		m = max(m, f.Size)
	}
	if n, l := z.Units(); n != len(z.Frames()) || l != m {
		panic("Units disagrees with Frames")
	}
	return m
}

func randomBytes(n int) []byte {
	p := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 3))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// skippable returns a skippable frame holding n bytes.
func skippable(id byte, n int) []byte {
	b := make([]byte, 8+n)
	binary.LittleEndian.PutUint32(b, skipMagic|uint32(id&15))
	binary.LittleEndian.PutUint32(b[4:], uint32(n))
	for i := range n {
		b[8+i] = byte(i)
	}
	return b
}

func TestConcatenatedAndSkippable(t *testing.T) {
	a, b := testData(300<<10, 4), testData(50<<10, 5)
	fa := cli(t, a, false, "zstd", "-3")
	fb := cli(t, b, true, "zstd", "-1", "--no-check")
	fe := cli(t, nil, false, "zstd")
	want := append(append([]byte(nil), a...), b...)
	for _, c := range []struct {
		name string
		file [][]byte
	}{
		{"cat", [][]byte{fa, fb}},
		{"empty between", [][]byte{fa, fe, fb, fe}},
		{"skippable", [][]byte{skippable(0, 5), fa, skippable(15, 0), fb, skippable(3, 100)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := bytes.Join(c.file, nil)
			if !zstdAccepts(file) {
				t.Fatal("zstd -t refuses the fixture")
			}
			compare(t, open(t, file, Options{}), want, 30)
		})
	}
	for _, c := range []struct {
		name string
		file [][]byte
		err  error
	}{
		{"garbage", [][]byte{fa, []byte("junk")}, ErrFormat},
		{"zeros", [][]byte{fa, make([]byte, 8)}, ErrFormat},
		{"not zstd", [][]byte{[]byte("hello, world")}, ErrNotZstd},
		{"truncated", [][]byte{fa[:len(fa)-1]}, ErrTruncated},
		{"truncated skippable", [][]byte{fa, skippable(1, 10)[:12]}, ErrTruncated},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := bytes.Join(c.file, nil)
			_, err := Open(bytes.NewReader(file), int64(len(file)), Options{})
			if !errors.Is(err, c.err) {
				t.Fatalf("Open: %v, want %v", err, c.err)
			}
		})
	}
}

// seekable writes data in the zstd seekable format, in frames of at most
// frame bytes, with XXH64 checksums in the table when sums. It is a
// minimal test-only writer of the seek table
// (contrib/seekable_format/zstd_seekable_compression_format.md in the zstd
// sources), using klauspost/compress's encoder for the frames. The
// per-frame table checksums are written as zero: the reader does not use
// them, and the frames carry their own.
func seekable(t testing.TB, data []byte, frame int, sums bool) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out, table []byte
	n := 0
	for off := 0; off < len(data); off += frame {
		piece := data[off:min(off+frame, len(data))]
		f := enc.EncodeAll(piece, nil)
		out = append(out, f...)
		table = binary.LittleEndian.AppendUint32(table, uint32(len(f)))
		table = binary.LittleEndian.AppendUint32(table, uint32(len(piece)))
		if sums {
			table = binary.LittleEndian.AppendUint32(table, 0)
		}
		n++
	}
	table = binary.LittleEndian.AppendUint32(table, uint32(n))
	desc := byte(0)
	if sums {
		desc = 0x80
	}
	table = append(table, desc)
	table = binary.LittleEndian.AppendUint32(table, seekFooterMagic)
	out = binary.LittleEndian.AppendUint32(out, seekTableMagic)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(table)))
	return append(out, table...)
}

// countingReaderAt counts the bytes read.
type countingReaderAt struct {
	r     io.ReaderAt
	mu    sync.Mutex
	n     int64
	calls int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.n += int64(len(p))
	c.calls++
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

func TestSeekable(t *testing.T) {
	data := testData(scaled(4<<20), 6)
	for _, sums := range []bool{false, true} {
		file := seekable(t, data, 256<<10, sums)
		if !zstdAccepts(file) {
			t.Fatal("zstd -t refuses the seekable fixture")
		}
		cr := &countingReaderAt{r: bytes.NewReader(file)}
		opt := Options{}
		if sums {
			opt.CacheBytes = 4 << 20
		}
		z, err := Open(cr, int64(len(file)), opt)
		if err != nil {
			t.Fatal(err)
		}
		if !z.Seekable() {
			t.Fatal("seek table not used")
		}
		if cr.n > int64(len(z.Frames()))*12+100 {
			t.Errorf("Open read %d bytes of a %d-byte file", cr.n, len(file))
		}
		compare(t, z, data, 30)
	}
	// A seek table that disagrees with the frames: sizes swapped.
	file := seekable(t, data[:600<<10], 256<<10, false)
	tab := len(file) - seekFooterSize - 3*8
	binary.LittleEndian.PutUint32(file[tab+4:], 100)
	z, err := Open(bytes.NewReader(file), int64(len(file)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(io.NewSectionReader(z, 0, z.Size())); !errors.Is(err, ErrFormat) && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading a lying seek table: %v", err)
	}
}

func TestLimits(t *testing.T) {
	data := testData(1<<20, 7)
	one := cli(t, data, false, "zstd", "-1")
	if _, err := Open(bytes.NewReader(one), int64(len(one)), Options{MaxUnit: 512 << 10}); !errors.Is(err, ErrUnitTooLarge) {
		t.Fatalf("MaxUnit: %v", err)
	} else {
		t.Log(err)
	}
	pipe := cli(t, data, true, "zstd", "-1")
	if _, err := Open(bytes.NewReader(pipe), int64(len(pipe)), Options{MaxUnit: 512 << 10}); !errors.Is(err, ErrUnitTooLarge) {
		t.Fatalf("MaxUnit without content size: %v", err)
	}
	long := cli(t, data, true, "zstd", "-1", "--long=28")
	if _, err := Open(bytes.NewReader(long), int64(len(long)), Options{}); !errors.Is(err, ErrWindowTooLarge) {
		t.Fatalf("--long=28: %v", err)
	}
	many := seekable(t, data, 4096, false)
	if _, err := Open(bytes.NewReader(many), int64(len(many)), Options{MaxUnits: 10}); !errors.Is(err, ErrTooManyUnits) {
		t.Fatalf("MaxUnits: %v", err)
	}
}

func TestChecksum(t *testing.T) {
	data := testData(200<<10, 8)
	file := cli(t, data, false, "zstd", "-1")
	file[len(file)-1] ^= 1
	z := open(t, file, Options{})
	_, err := io.ReadAll(io.NewSectionReader(z, 0, z.Size()))
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("flipped checksum: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	data := testData(scaled(8<<20), 9)
	file := seekable(t, data, 512<<10, false)
	z := open(t, file, Options{Decoders: 3})
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			p := make([]byte, 64<<10)
			off := rng.Int64N(int64(len(data)))
			for i := 0; i < 30; i++ {
				if g%2 == 0 {
					off = rng.Int64N(int64(len(data)))
				}
				n, err := z.ReadAt(p, off)
				if err != nil && err != io.EOF {
					t.Error(err)
					return
				}
				if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					t.Errorf("reader %d: wrong bytes at %d", g, off)
					return
				}
				off = (off + int64(n)) % int64(len(data))
			}
		}(g)
	}
	wg.Wait()
	time.Sleep(10 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines before, %d after: decoders leak goroutines", before, after)
	}
}

// TestZeros walks a long run of zeros, whose blocks are a few bytes each,
// in a few reads.
func TestZeros(t *testing.T) {
	data := make([]byte, scaled(64<<20))
	for _, prog := range []string{"zstd", "pzstd"} {
		file := cli(t, data, false, prog, "-1")
		cr := &countingReaderAt{r: bytes.NewReader(file)}
		z, err := Open(cr, int64(len(file)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes, Open made %d reads of %d bytes", prog, len(file), cr.calls, cr.n)
		// A read of the walk's window, and one per frame that Open
		// decodes to learn its size (pzstd states none).
		if cr.calls > 4+len(z.Frames()) {
			t.Errorf("%s: Open made %d reads", prog, cr.calls)
		}
		compare(t, z, data, 10)
	}
}
