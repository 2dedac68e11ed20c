package codec

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// withC reports whether this build has the libdeflate fast path.
var withC = strings.HasPrefix(Backend(), "libdeflate")

func deflateOf(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 6)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// errClass reduces an error to what callers distinguish with errors.Is.
func errClass(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, ErrShort):
		return "ErrShort"
	case errors.Is(err, ErrOverflow):
		return "ErrOverflow"
	}
	return "error"
}

type inflater func(dst, src []byte) (int, error)

// checkAgainstGo decodes src into a size-byte buffer with the public
// function and with its pure Go path, and fails unless they agree on n, the
// error class and dst[:n]. It also checks that the public function returns
// libdeflate's result exactly when libdeflate succeeds.
//
// One difference is allowed, for the malformed streams libdeflate accepts
// and Go (like zlib) rejects: see TestLibdeflateLeniency. There, the two
// must still agree on every byte Go produced before rejecting.
func checkAgainstGo(t *testing.T, name string, public, goPath inflater, size int, src []byte) {
	t.Helper()
	pub, ref, c := make([]byte, size), make([]byte, size), make([]byte, size)
	n, err := public(pub, src)
	gn, gerr := goPath(ref, src)
	cn, fast := inflateC(c, src, name == "Zlib")
	if n < 0 || n > size || gn < 0 || gn > size {
		t.Fatalf("%s(%d bytes): n = %d, Go n = %d", name, size, n, gn)
	}
	if fast && (n != cn || !bytes.Equal(pub[:n], c[:cn]) || errClass(err) != errClass(short(cn, size))) {
		t.Fatalf("%s(%d bytes) = %d, %v; libdeflate decoded %d bytes", name, size, n, err, cn)
	}
	if fast && errClass(gerr) == "error" {
		if gn > n || !bytes.Equal(pub[:gn], ref[:gn]) {
			t.Fatalf("%s(%d bytes): libdeflate accepted %d bytes that differ from the %d Go decoded before %v",
				name, size, n, gn, gerr)
		}
		return
	}
	if n != gn || errClass(err) != errClass(gerr) || !bytes.Equal(pub[:n], ref[:gn]) {
		t.Fatalf("%s(%d bytes) = %d, %v; Go path: %d, %v (libdeflate ok: %v, bytes equal: %v)",
			name, size, n, err, gn, gerr, fast, bytes.Equal(pub[:n], ref[:min(n, gn)]))
	}
}

// TestPublicMatchesGoPath compares Zlib and Deflate with their pure Go
// paths on valid, damaged and hostile input. Built with -tags libdeflate it
// tests the C fast path against Go; without, it compares Go with itself and
// only checks the wiring.
func TestPublicMatchesGoPath(t *testing.T) {
	unit := sample(65536)
	z, d := zlibOf(t, unit), deflateOf(unit)
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x10; return b }
	fdict := bytes.Clone(z)
	fdict[1] = 0x20 // FDICT, then an FCHECK that keeps the header valid
	fdict[1] += byte((31 - (uint(fdict[0])<<8|0x20)%31) % 31)
	for _, tc := range []struct {
		name string
		src  []byte
		size int
		want string // error class of Zlib, or of Deflate for "deflate ..."
		fast bool   // libdeflate must take it (under the tag)
	}{
		{"zlib", z, len(unit), "nil", true},
		{"deflate", d, len(unit), "nil", true},
		{"zlib+trailing", append(bytes.Clone(z), "next grain"...), len(unit), "nil", true},
		{"deflate+trailing", append(bytes.Clone(d), "next cluster"...), len(unit), "nil", true},
		{"zlib short", z, len(unit) + 100, "ErrShort", true},
		{"deflate short", d, len(unit) + 100, "ErrShort", true},
		{"zlib overflow", z, len(unit) - 1, "ErrOverflow", false},
		{"deflate overflow", d, 1000, "ErrOverflow", false},
		{"zlib truncated", z[:len(z)/2], len(unit), "ErrShort", false},
		{"deflate truncated", d[:len(d)/2], len(unit), "ErrShort", false},
		{"zlib without Adler-32", z[:len(z)-4], len(unit), "error", false},
		{"zlib bad Adler-32", flip(z, len(z)-1), len(unit), "error", false},
		{"zlib corrupt body", flip(z, len(z)/3), len(unit), "error", false},
		{"zlib FDICT", fdict, len(unit), "error", false},
		{"zlib stored blocks", zlibLevel(unit[:5000], 0), 5000, "nil", true},
		{"deflate fixed Huffman", fixedBlock('a', 257, 0, 256), 4, "nil", true},
		{"zlib empty src", nil, 512, "error", false},
		{"zlib empty dst", z, 0, "ErrOverflow", false},
		{"zlib empty stream", zlibOf(t, nil), 512, "ErrShort", true},
		{"zlib garbage", []byte("not a compressed stream at all"), 512, "error", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := Zlib
			zlib := !strings.HasPrefix(tc.name, "deflate")
			if !zlib {
				fn = Deflate
			}
			if _, ok := inflateC(make([]byte, tc.size), tc.src, zlib); ok != (tc.fast && withC) {
				t.Errorf("libdeflate ok = %v, want %v", ok, tc.fast && withC)
			}
			if _, err := fn(make([]byte, tc.size), tc.src); errClass(err) != tc.want {
				t.Errorf("err = %v, want %s", err, tc.want)
			}
			checkAgainstGo(t, "Zlib", Zlib, goZlib, tc.size, tc.src)
			checkAgainstGo(t, "Deflate", Deflate, goDeflate, tc.size, tc.src)
		})
	}
}

// TestLibdeflateLeniency pins the known difference between the paths, on
// malformed streams only libdeflate accepts (see inflateC): here, length
// symbol 286, which Go and zlib reject and libdeflate decodes as 258.
func TestLibdeflateLeniency(t *testing.T) {
	src := fixedBlock('a', 286, 0, 256) // 'a', then length 258 at distance 1
	dst := make([]byte, 259)
	if _, err := goDeflate(dst, src); errClass(err) != "error" {
		t.Fatalf("Go path: err = %v, want corrupt input", err)
	}
	n, err := Deflate(dst, src)
	if withC {
		if n != 259 || err != nil || !bytes.Equal(dst, bytes.Repeat([]byte("a"), 259)) {
			t.Fatalf("libdeflate: n = %d, err = %v", n, err)
		}
	} else if errClass(err) != "error" {
		t.Fatalf("err = %v, want corrupt input", err)
	}
}

// BenchmarkZlib64K inflates a 64 KiB VMDK-like grain of program code, with
// the public Zlib (its sub-benchmark named by Backend) and with the pure Go
// path, so one run under -tags libdeflate shows both speeds.
func BenchmarkZlib64K(b *testing.B) {
	var unit []byte
	for _, name := range []string{"ls", "cp", "tar", "date", "sort"} {
		if bin, err := os.ReadFile("/usr/bin/" + name); err == nil && len(bin) >= 32<<10 {
			unit = append(unit, bin[16<<10:32<<10]...)
		}
	}
	if len(unit) < 64<<10 {
		b.Skip("needs four of /usr/bin/{ls,cp,tar,date,sort}")
	}
	unit = unit[:64<<10]
	src := zlibOf(nil, unit)
	for _, bc := range []struct {
		name string
		fn   inflater
	}{{Backend(), Zlib}, {"go", goZlib}} {
		b.Run(bc.name, func(b *testing.B) {
			dst := make([]byte, len(unit))
			b.SetBytes(int64(len(unit)))
			for b.Loop() {
				if n, err := bc.fn(dst, src); err != nil || n != len(unit) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func zlibLevel(b []byte, level int) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, level)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// fixedBlock builds a final fixed-Huffman deflate block from literal/length
// symbols; a length symbol is followed by its distance symbol (no extra
// bits, so only symbols without them: lengths 257-264, 285-287, and
// distances 0-3, 30-31 as 5-bit codes).
func fixedBlock(syms ...int) []byte {
	var w bitWriter
	w.bits(1, 1) // BFINAL
	w.bits(1, 2) // BTYPE 01: fixed Huffman
	for i := 0; i < len(syms); i++ {
		switch s := syms[i]; {
		case s < 144:
			w.code(0x30+s, 8)
		case s < 256:
			w.code(0x190+s-144, 9)
		case s < 280:
			w.code(s-256, 7)
		default:
			w.code(0xc0+s-280, 8)
		}
		if s := syms[i]; s > 256 {
			i++
			w.code(syms[i], 5)
		}
	}
	return w.b
}

// bitWriter packs deflate bits: fields LSB first, Huffman codes MSB first.
type bitWriter struct {
	b []byte
	n int
}

func (w *bitWriter) bits(v, n int) {
	for i := range n {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (w.n % 8)
		w.n++
	}
}

func (w *bitWriter) code(c, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bits(c>>i&1, 1)
	}
}

// TestDamagedUnitIndependentOfHistory decodes malformed streams right after
// valid ones, so that the pooled decoder holds their Huffman tables: the
// answer must be the one a fresh decoder gives. Both inputs come from
// FuzzZlib runs that failed only with two workers, never when replayed.
func TestDamagedUnitIndependentOfHistory(t *testing.T) {
	valid := [][]byte{zlibOf(t, sample(65536)), zlibOf(t, bytes.Repeat([]byte("abcdefgh"), 8192))}
	for _, bad := range [][]byte{
		[]byte("x\x01$0\x00\x00,\xe8"),
		[]byte("$0\x00\x00\x00\x80\x00\x00\x000800\x0e0000000000040000000000000"),
	} {
		for _, size := range []int{64, 4096} {
			for name, dec := range map[string]struct {
				public func(dst, src []byte) (int, error)
				once   func(dst, src []byte, pooled, probe bool) (int, error)
				prime  func(dst, src []byte) (int, error)
			}{
				"zlib":    {goZlib, zlibOnce, goZlib},
				"deflate": {goDeflate, deflateOnce, goDeflate},
			} {
				want := make([]byte, size)
				wn, werr := dec.once(want, bad, false, true)
				for i := range 20 {
					src := valid[i%len(valid)]
					if name == "deflate" {
						src = src[2:] // the same stream without its zlib header
					}
					dec.prime(make([]byte, 65536), src)
					got := make([]byte, size)
					n, err := dec.public(got, bad)
					if n != wn || errClass(err) != errClass(werr) || fmt.Sprint(err) != fmt.Sprint(werr) || !bytes.Equal(got[:n], want[:wn]) {
						t.Fatalf("%s(%q, %d) after a valid unit = %d, %v; a fresh decoder gives %d, %v", name, bad, size, n, err, wn, werr)
					}
				}
			}
		}
	}
}
