package xzindex

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
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

// xzFile compresses data with the xz CLI and the given flags.
func xzFile(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("xz", append(append([]string{"-k", "-c", "-q"}, args...), in)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("xz %v: %v: %s", args, err, errb.String())
	}
	return out.Bytes()
}

// xzAccepts reports whether xz -t accepts the file.
func xzAccepts(t testing.TB, file []byte) bool {
	cmd := exec.Command("xz", "-t", "-q", "-q")
	cmd.Stdin = bytes.NewReader(file)
	return cmd.Run() == nil
}

// compare reads want from x at random offsets and lengths, then all of
// it sequentially.
func compare(t *testing.T, x *Reader, want []byte, reads int) {
	t.Helper()
	if x.Size() != int64(len(want)) {
		t.Fatalf("Size %d, want %d", x.Size(), len(want))
	}
	rng := rand.New(rand.NewPCG(uint64(len(want)), 2))
	for i := 0; i < reads && len(want) > 0; i++ {
		off := rng.Int64N(int64(len(want)))
		n := rng.IntN(300 << 10)
		p := make([]byte, n)
		k, err := x.ReadAt(p, off)
		end := min(off+int64(n), int64(len(want)))
		if k != int(end-off) || (err != nil && err != io.EOF) || (end == off+int64(n) && err != nil) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, k, err)
		}
		if !bytes.Equal(p[:k], want[off:end]) {
			t.Fatalf("ReadAt(%d, %d): wrong bytes", n, off)
		}
	}
	got, err := io.ReadAll(io.NewSectionReader(x, 0, x.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("sequential read: wrong bytes")
	}
	if k, err := x.ReadAt(make([]byte, 1), x.Size()); k != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v", k, err)
	}
}

func open(t *testing.T, file []byte, opt Options) *Reader {
	t.Helper()
	x, err := Open(bytes.NewReader(file), int64(len(file)), opt)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestCLI(t *testing.T) {
	small := testData(100<<10, 1)
	big := testData(scaled(3<<20), 2)
	cases := []struct {
		name   string
		data   []byte
		args   []string
		blocks int // 0: do not check
	}{
		{"single-threaded -6", big, []string{"-6"}, 1},
		{"-T0 small", small, []string{"-T0"}, 1},
		{"-T2 block-size", big, []string{"-T2", "--block-size=256KiB"}, (len(big) + 256<<10 - 1) / (256 << 10)},
		{"-T1 block-size", big, []string{"-T1", "--block-size=1MiB", "-1"}, (len(big) + 1<<20 - 1) / (1 << 20)},
		{"check none", small, []string{"--check=none", "--block-size=32KiB"}, 4},
		{"check crc32", small, []string{"--check=crc32", "--block-size=32KiB"}, 4},
		{"check crc64", small, []string{"--check=crc64", "--block-size=32KiB"}, 4},
		{"check sha256", small, []string{"--check=sha256", "--block-size=32KiB"}, 4},
		{"-0", small, []string{"-0"}, 1},
		{"-9e", small, []string{"-9e", "-T0"}, 1},
		{"empty", nil, nil, 0},
		{"random", randomBytes(200 << 10), []string{"--block-size=64KiB"}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := xzFile(t, c.data, c.args...)
			for _, b := range backends {
				x := open(t, file, Options{lzma2: b.f})
				if c.blocks != 0 && len(x.Blocks()) != c.blocks {
					t.Errorf("%d blocks, want %d", len(x.Blocks()), c.blocks)
				}
				compare(t, x, c.data, 50)
			}
		})
	}
}

func randomBytes(n int) []byte {
	p := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 3))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

func TestConcatenatedAndPadding(t *testing.T) {
	a, b := testData(300<<10, 4), testData(50<<10, 5)
	fa := xzFile(t, a, "--block-size=100KiB")
	fb := xzFile(t, b, "--check=sha256")
	fe := xzFile(t, nil)
	want := append(append([]byte(nil), a...), b...)
	pad := make([]byte, 8)
	for _, c := range []struct {
		name string
		file [][]byte
	}{
		{"cat", [][]byte{fa, fb}},
		{"empty between", [][]byte{fa, fe, fb, fe}},
		{"padding", [][]byte{fa, pad, fb, pad[:4]}},
		{"padding after empty", [][]byte{fa, fe, pad, fb}},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := bytes.Join(c.file, nil)
			if !xzAccepts(t, file) {
				t.Fatal("xz -t refuses the fixture")
			}
			x := open(t, file, Options{CacheBytes: -1})
			compare(t, x, want, 40)
		})
	}
	for _, c := range []struct {
		name string
		file [][]byte
	}{
		{"leading padding", [][]byte{pad, fa}},
		{"odd padding", [][]byte{fa, pad[:3]}},
		{"garbage", [][]byte{fa, []byte("junk")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := bytes.Join(c.file, nil)
			if _, err := Open(bytes.NewReader(file), int64(len(file)), Options{}); err == nil {
				t.Fatal("Open accepted it")
			}
		})
	}
}

func TestLimits(t *testing.T) {
	data := testData(1<<20, 6)
	file := xzFile(t, data, "-6")
	_, err := Open(bytes.NewReader(file), int64(len(file)), Options{MaxUnit: 512 << 10})
	if !errors.Is(err, ErrUnitTooLarge) {
		t.Fatalf("MaxUnit: %v", err)
	}
	t.Log(err)
	_, err = Open(bytes.NewReader(file), int64(len(file)), Options{MaxDict: 256 << 10})
	if !errors.Is(err, ErrDictTooLarge) {
		t.Fatalf("MaxDict: %v", err)
	}
	// A small file's dictionary is bounded by its size, whatever the
	// header says.
	small := xzFile(t, data[:100<<10], "-9")
	compare(t, open(t, small, Options{MaxDict: 128 << 10}), data[:100<<10], 10)
	many := xzFile(t, data, "--block-size=64KiB")
	if _, err := Open(bytes.NewReader(many), int64(len(many)), Options{MaxUnits: 10}); !errors.Is(err, ErrTooManyUnits) {
		t.Fatalf("MaxUnits: %v", err)
	}
}

func TestFilters(t *testing.T) {
	data := testData(100<<10, 7)
	for _, args := range [][]string{{"--x86", "--lzma2"}, {"--delta=dist=4", "--lzma2"}, {"--format=xz", "--arm64", "--lzma2"}} {
		file := xzFile(t, data, args...)
		_, err := Open(bytes.NewReader(file), int64(len(file)), Options{})
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("%v: %v", args, err)
		}
		t.Log(err)
	}
}

func TestConcurrent(t *testing.T) {
	data := testData(scaled(3<<20), 8)
	file := xzFile(t, data, "--block-size=128KiB", "-T2")
	x := open(t, file, Options{Decoders: 3})
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			p := make([]byte, 64<<10)
			off := rng.Int64N(int64(len(data)))
			for i := 0; i < 20; i++ {
				if g%2 == 0 {
					off = rng.Int64N(int64(len(data)))
				}
				n, err := x.ReadAt(p, off)
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
}
