package gzindex

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"io/fs"
	"math/bits"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

var (
	realMu    sync.Mutex
	realFiles []string // regular files under /usr/bin and /usr/lib, sorted
	realNext  int      // next file of realFiles to append to realCache
	realCache []byte
)

// realBytes returns n bytes of real executables and libraries from /usr,
// concatenated in a fixed order: they compress like disk images do, with
// every kind of deflate block, unlike random or synthetic data.
func realBytes(t testing.TB, n int) []byte {
	t.Helper()
	realMu.Lock()
	defer realMu.Unlock()
	if realFiles == nil {
		for _, dir := range []string{"/usr/bin", "/usr/lib"} {
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					realFiles = append(realFiles, p)
				}
				return nil
			})
		}
		sort.Strings(realFiles)
	}
	for len(realCache) < n && realNext < len(realFiles) {
		b, err := os.ReadFile(realFiles[realNext])
		realNext++
		if err == nil {
			realCache = append(realCache, b...)
		}
	}
	if len(realCache) < n {
		t.Skipf("only %d bytes of files under /usr/bin and /usr/lib, the test needs %d", len(realCache), n)
	}
	return realCache[:n:n]
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// textBytes is compressible, repetitive but not trivial text.
func textBytes(n int, seed int64) []byte {
	words := []string{"appliance ", "disk ", "manifest ", "the ", "of ", "ovf:Envelope ", "\n", "<File ovf:href=\"disk1.vmdk\"/> ", "SHA256(", ")= ", "0123456789abcdef"}
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.Intn(len(words))])
	}
	return b.Bytes()[:n]
}

func gzipStd(t testing.TB, data []byte, level int) []byte {
	return gzipWith(t, data, func(w io.Writer) (io.WriteCloser, error) { return stdgzip.NewWriterLevel(w, level) })
}

func gzipKlaus(t testing.TB, data []byte, level int) []byte {
	return gzipWith(t, data, func(w io.Writer) (io.WriteCloser, error) { return kgzip.NewWriterLevel(w, level) })
}

// gzipWith compresses data with one of the two gzip writers the tests
// compare against.
func gzipWith(t testing.TB, data []byte, open func(io.Writer) (io.WriteCloser, error)) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := open(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bitWriter writes a deflate bit stream by hand, for blocks no ordinary
// encoder produces: one huge fixed or dynamic block, degenerate codes,
// and every kind of damage.
type bitWriter struct {
	buf []byte
	acc uint64
	n   uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.n
	w.n += n
	for w.n >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

// code writes a Huffman code, which deflate packs most significant bit
// first.
func (w *bitWriter) code(c uint32, n uint) {
	w.bits(uint64(bits.Reverse32(c)>>(32-n)), n)
}

func (w *bitWriter) align() {
	if w.n > 0 {
		w.bits(0, 8-w.n)
	}
}

func (w *bitWriter) bytes() []byte {
	w.align()
	return w.buf
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (w *bitWriter) stored(data []byte, final bool) {
	w.bits(boolBit(final), 1)
	w.bits(0, 2)
	w.align()
	w.bits(uint64(len(data)), 16)
	w.bits(uint64(^uint16(len(data))), 16)
	for _, c := range data {
		w.bits(uint64(c), 8)
	}
}

// canonical returns the canonical codes for lens (RFC 1951 3.2.2).
func canonical(lens []uint8) []uint32 {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [16]uint32
	code := uint32(0)
	for n := 1; n < 16; n++ {
		code = (code + uint32(count[n-1])) << 1
		next[n] = code
	}
	codes := make([]uint32, len(lens))
	for s, l := range lens {
		if l > 0 {
			codes[s] = next[l]
			next[l]++
		}
	}
	return codes
}

// lz77 turns data into literals and (length, distance) matches with a
// greedy single-candidate matcher: good enough to use every length and
// distance code.
type token struct{ lit, length, dist int }

// unusedDist as a token's distance writes the bit pattern 1, which a
// distance code of a single one-bit code (pattern 0) leaves unused.
const unusedDist = -1

func lz77(data []byte) []token {
	var toks []token
	head := map[uint32]int{}
	for i := 0; i < len(data); {
		if i+3 <= len(data) {
			h := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16
			j, ok := head[h]
			head[h] = i
			if ok && i-j <= windowSize {
				l := 0
				for l < maxMatch && i+l < len(data) && data[j+l] == data[i+l] {
					l++
				}
				if l >= 3 {
					toks = append(toks, token{length: l, dist: i - j})
					i += l
					continue
				}
			}
		}
		toks = append(toks, token{lit: int(data[i])})
		i++
	}
	return toks
}

// lengthSym returns the symbol, extra value and extra bit count of a
// match length (3 to 258).
func lengthSym(l int) (int, int, uint) {
	s := len(lengthBase) - 1
	for int(lengthBase[s]) > l {
		s--
	}
	return 257 + s, l - int(lengthBase[s]), uint(lengthExtra[s])
}

// distSym does the same for a distance (1 to 32768).
func distSym(d int) (int, int, uint) {
	s := len(distBase) - 1
	for int(distBase[s]) > d {
		s--
	}
	return s, d - int(distBase[s]), uint(distExtra[s])
}

// huffmanBlock writes toks with the given code lengths; fixed selects
// block type 1 (lens must then be the fixed ones), else a dynamic header
// is written with a code length code of 4 bits for lengths 0-15.
func (w *bitWriter) huffmanBlock(toks []token, litLens, distLens []uint8, fixed, final bool) {
	w.bits(boolBit(final), 1)
	if fixed {
		w.bits(1, 2)
	} else {
		w.bits(2, 2)
		w.bits(uint64(len(litLens)-257), 5)
		w.bits(uint64(len(distLens)-1), 5)
		w.bits(19-4, 4)
		for _, s := range clenOrder {
			if s < 16 {
				w.bits(4, 3)
			} else {
				w.bits(0, 3)
			}
		}
		for _, l := range append(append([]uint8{}, litLens...), distLens...) {
			w.code(uint32(l), 4)
		}
	}
	lc, dc := canonical(litLens), canonical(distLens)
	for _, t := range toks {
		if t.length == 0 {
			w.code(lc[t.lit], uint(litLens[t.lit]))
			continue
		}
		s, e, n := lengthSym(t.length)
		w.code(lc[s], uint(litLens[s]))
		w.bits(uint64(e), n)
		if t.dist == unusedDist {
			w.code(1, 1)
			continue
		}
		s, e, n = distSym(t.dist)
		w.code(dc[s], uint(distLens[s]))
		w.bits(uint64(e), n)
	}
	w.code(lc[256], uint(litLens[256]))
}

func fixedLens() ([]uint8, []uint8) {
	lit := make([]uint8, 288)
	for i := range lit {
		switch {
		case i < 144:
			lit[i] = 8
		case i < 256:
			lit[i] = 9
		case i < 280:
			lit[i] = 7
		default:
			lit[i] = 8
		}
	}
	dist := make([]uint8, 30)
	for i := range dist {
		dist[i] = 5
	}
	return lit, dist
}

// member wraps raw deflate data in a gzip member for data.
func member(deflate, data []byte) []byte {
	b := []byte{gzID1, gzID2, gzDeflate, 0, 0, 0, 0, 0, 0, 255}
	b = append(b, deflate...)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(data))
	return binary.LittleEndian.AppendUint32(b, uint32(len(data)))
}

// concat joins byte slices into a new one.
func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func buildIndex(t testing.TB, gz []byte, opt Options) *Index {
	t.Helper()
	ix, err := BuildContext(t.Context(), bytes.NewReader(gz), int64(len(gz)), opt)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return ix
}

// checkReads compares reads at random offsets and lengths, and a few at
// the edges, with want.
func checkReads(t testing.TB, rd *Reader, want []byte, reads, maxLen int, seed int64) {
	t.Helper()
	if rd.Size() != int64(len(want)) {
		t.Fatalf("Size() = %d, want %d", rd.Size(), len(want))
	}
	rng := rand.New(rand.NewSource(seed))
	size := int64(len(want))
	offs := []int64{0, size / 2, max(0, size-1), size, size + 10}
	for range reads {
		offs = append(offs, rng.Int63n(size+1))
	}
	for _, off := range offs {
		n := rng.Intn(maxLen + 1)
		p := make([]byte, n)
		got, err := rd.ReadAt(p, off)
		wantN := int(max(0, min(int64(n), size-off)))
		if got != wantN {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d bytes", n, off, got, err, wantN)
		}
		if wantN < n && err == nil {
			t.Fatalf("ReadAt(%d bytes at %d) short without an error", n, off)
		}
		if wantN == n && err != nil {
			t.Fatalf("ReadAt(%d bytes at %d): %v", n, off, err)
		}
		if wantN > 0 && !bytes.Equal(p[:got], want[off:off+int64(got)]) {
			t.Fatalf("ReadAt(%d bytes at %d) returned wrong bytes", n, off)
		}
	}
}
