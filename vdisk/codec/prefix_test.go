package codec

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"math/rand"
	"os"
	"testing"
)

// mixed returns n bytes of which about a fraction random of each 1 KiB
// piece is random and the rest repeats a short phrase: random=1 makes
// stored blocks, random=0 long matches.
func mixed(n int, random float64, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	b := make([]byte, n)
	for off := 0; off < n; off += 1024 {
		piece := b[off:min(off+1024, n)]
		if rng.Float64() < random {
			rng.Read(piece)
			continue
		}
		phrase := []byte("grain of an appliance disk ")
		phrase[rng.Intn(len(phrase))] = byte(rng.Intn(256))
		for i := range piece {
			piece[i] = phrase[i%len(phrase)]
		}
	}
	return b
}

func deflateLevel(b []byte, level int) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, level)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// checkPrefix decodes the first p bytes of src both ways and fails unless
// an ok answer is exactly want[:p].
func checkPrefix(t *testing.T, name string, fn func(dst, src []byte) bool, src, want []byte, p int) bool {
	t.Helper()
	dst := bytes.Repeat([]byte{0xa5}, p)
	ok := fn(dst, src)
	if ok && (p > len(want) || !bytes.Equal(dst, want[:p])) {
		t.Fatalf("%s: prefix of %d bytes accepted but wrong", name, p)
	}
	return ok
}

// TestPrefixAgainstFullDecode decodes prefixes of every length at a stride
// (and every length near the block boundaries of a stored stream) of units
// of every compressibility and zlib level, and compares them with the
// unit. A valid stream must always give its prefix (libdeflate hands what
// it cannot do to the Go path).
func TestPrefixAgainstFullDecode(t *testing.T) {
	const unit = 64 << 10
	stride := 331
	if testing.Short() {
		stride = 1021
	}
	fallbacks := 0
	for _, random := range []float64{0, 0.1, 0.5, 0.9, 1} {
		want := mixed(unit, random, int64(random*100))
		for level := 0; level <= 9; level++ {
			z := zlibLevel(want, level)
			d := deflateLevel(want, level)
			for p := 1; p <= unit; p += stride {
				if !checkPrefix(t, "zlib", ZlibPrefix, z, want, p) {
					t.Fatalf("zlib level %d, %.0f%% random: prefix %d refused", level, random*100, p)
				}
				if !checkPrefix(t, "deflate", DeflatePrefix, d, want, p) {
					t.Fatalf("deflate level %d, %.0f%% random: prefix %d refused", level, random*100, p)
				}
				if ok, tried := prefixC(make([]byte, p), z, true); withC && !ok && tried {
					t.Fatalf("libdeflate failed a valid stream at prefix %d", p)
				} else if withC && !tried {
					fallbacks++
				}
			}
			for _, p := range []int{unit - 1, unit, 65535, 65536 - 511, 65536 - 257, 256, 511, 512, 513} {
				checkPrefix(t, "zlib", ZlibPrefix, z, want, p)
				checkPrefix(t, "deflate", DeflatePrefix, d, want, p)
			}
		}
	}
	t.Logf("libdeflate handed %d prefixes to the Go path (stored blocks)", fallbacks)
}

// Streams that are damaged, truncated or end early are refused, or give
// the bytes before the damage (the full decode then rejects the unit).
func TestPrefixDamaged(t *testing.T) {
	want := mixed(64<<10, 0.3, 7)
	z := zlibLevel(want, 6)
	// Past the end of the stream: refused.
	for _, p := range []int{len(want) + 1, len(want) + 1000} {
		if ZlibPrefix(make([]byte, p), z) {
			t.Fatalf("prefix of %d bytes of a %d-byte stream accepted", p, len(want))
		}
		if DeflatePrefix(make([]byte, p), z[2:]) {
			t.Fatalf("deflate prefix of %d bytes of a %d-byte stream accepted", p, len(want))
		}
	}
	// A bad Adler-32 is not looked at.
	bad := bytes.Clone(z)
	bad[len(bad)-1] ^= 0xff
	for _, p := range []int{1, 4096, 60000, len(want)} {
		if !checkPrefix(t, "zlib bad adler", ZlibPrefix, bad, want, p) {
			t.Fatalf("prefix %d refused for a bad Adler-32 only", p)
		}
	}
	// Truncated: whatever is accepted matches; the far end is refused.
	cut := z[:len(z)/2]
	for p := 1; p <= len(want); p += 509 {
		checkPrefix(t, "zlib truncated", ZlibPrefix, cut, want, p)
	}
	if ZlibPrefix(make([]byte, len(want)), cut) {
		t.Fatal("whole unit from half a stream")
	}
	if ZlibPrefix(make([]byte, 10), []byte("garbage, not zlib")) || ZlibPrefix(make([]byte, 10), nil) {
		t.Fatal("garbage accepted")
	}
	if !ZlibPrefix(nil, z) {
		t.Fatal("empty prefix refused")
	}
}

// FuzzPrefix checks the prefix decoders against the whole decoders on
// arbitrary input: an accepted prefix must equal what the Go path decodes
// before it stops, and a stream the Go path decodes past the prefix must
// give it (under libdeflate, unless the stream is damaged after it).
func FuzzPrefix(f *testing.F) {
	f.Add(zlibLevel(mixed(8192, 0.5, 1), 6), uint16(100))
	f.Add(zlibLevel(mixed(8192, 1, 2), 0), uint16(5000))
	f.Add(zlibLevel(mixed(8192, 0, 3), 9), uint16(8000))
	f.Add(fixedBlock('a', 257, 0, 256), uint16(3))
	f.Fuzz(func(t *testing.T, src []byte, p16 uint16) {
		p := int(p16%8192) + 1
		for _, tc := range []struct {
			name   string
			prefix func(dst, src []byte) bool
			whole  func(dst, src []byte, pooled, probe bool) (int, error)
		}{{"zlib", ZlibPrefix, zlibOnce}, {"deflate", DeflatePrefix, deflateOnce}} {
			ref := make([]byte, 8192)
			gn, err := tc.whole(ref, src, false, true)
			dst := make([]byte, p)
			ok := tc.prefix(dst, src)
			if ok && !bytes.Equal(dst[:min(p, gn)], ref[:min(p, gn)]) {
				t.Fatalf("%s: prefix %d accepted, differs from the %d bytes the Go path decoded", tc.name, p, gn)
			}
			// A stream Go rejects may be refused outright by libdeflate.
			if !ok && gn >= p && (!withC || errClass(err) != "error") {
				t.Fatalf("%s: prefix %d refused, but the Go path decoded %d bytes", tc.name, p, gn)
			}
		}
	})
}

// BenchmarkPrefix serves 4 KiB reads at random 4 KiB-aligned offsets of
// 64 KiB grains of real programs, by a whole decode (what a read costs
// today) and by a prefix decode that ends at the read's end.
func BenchmarkPrefix(b *testing.B) {
	var grains [][]byte
	for _, name := range []string{"ls", "cp", "tar", "date", "sort", "bash", "find"} {
		bin, err := os.ReadFile("/usr/bin/" + name)
		for off := 0; err == nil && off+64<<10 <= len(bin) && len(grains) < 32; off += 64 << 10 {
			grains = append(grains, bin[off:off+64<<10])
		}
	}
	if len(grains) < 8 {
		b.Skip("needs /usr/bin programs")
	}
	var zs [][]byte
	for _, g := range grains {
		var buf bytes.Buffer
		w, _ := zlib.NewWriterLevel(&buf, 6)
		w.Write(g)
		w.Close()
		zs = append(zs, buf.Bytes())
	}
	for _, bc := range []struct {
		name   string
		prefix bool
		end    int // 0: random; otherwise the read ends here
	}{{"full", false, 0}, {"prefix", true, 0}, {"prefix-4K", true, 4 << 10}, {"prefix-32K", true, 32 << 10}, {"prefix-60K", true, 60 << 10}} {
		b.Run(Backend()+"/"+bc.name, func(b *testing.B) {
			rng := rand.New(rand.NewSource(1))
			dst := make([]byte, 64<<10)
			i := 0
			for b.Loop() {
				z := zs[i%len(zs)]
				i++
				end := bc.end
				if end == 0 {
					end = (rng.Intn(16) + 1) * 4096
				}
				if !bc.prefix {
					if _, err := Zlib(dst, z); err != nil {
						b.Fatal(err)
					}
				} else if !ZlibPrefix(dst[:end], z) {
					b.Fatal("prefix refused")
				}
			}
		})
	}
}
