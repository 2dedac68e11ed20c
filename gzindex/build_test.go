package gzindex

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// checkSpacing verifies the promise behind Span: consecutive checkpoints
// are at most a span apart in decompressed and in compressed bytes, give
// or take a match, a block header and the decoder's 8 bytes of lookahead,
// which thinning doubles along with the span.
func checkSpacing(t testing.TB, ix *Index, baseSpan int64) {
	t.Helper()
	slack := int64(1024)
	for s := max(baseSpan, MinSpan); s < ix.span; s *= 2 {
		slack *= 2
	}
	for i := 1; i < len(ix.cps); i++ {
		a, b := ix.cps[i-1], ix.cps[i]
		if b.out-a.out > ix.span+slack || (b.in-a.in)/8 > ix.span+slack {
			t.Fatalf("checkpoints %d and %d are %d decompressed and %d compressed bytes apart; span %d",
				i-1, i, b.out-a.out, (b.in-a.in)/8, ix.span)
		}
	}
}

func TestBuildRoundTrip(t *testing.T) {
	real8 := realBytes(t, scaled(3<<20))
	text := textBytes(scaled(1<<20), 7)
	cases := []struct {
		name string
		data []byte
		gz   []byte
	}{
		{"empty", nil, gzipStd(t, nil, 6)},
		{"one byte", []byte{'x'}, gzipStd(t, []byte{'x'}, 6)},
		{"real gzip-1", real8, gzipStd(t, real8, 1)},
		{"real gzip-6", real8, gzipStd(t, real8, 6)},
		{"real gzip-9", real8[:scaled(1<<20)], gzipStd(t, real8[:scaled(1<<20)], 9)},
		{"real stored", real8[:scaled(1<<20)], gzipStd(t, real8[:scaled(1<<20)], 0)},
		{"real huffman-only", real8[:scaled(1<<20)], gzipStd(t, real8[:scaled(1<<20)], -2)},
		{"real klauspost-1", real8, gzipKlaus(t, real8, 1)},
		{"real klauspost-9", real8, gzipKlaus(t, real8, 9)},
		{"text klauspost-5", text, gzipKlaus(t, text, 5)},
		{"random", randomBytes(scaled(512<<10), 9), gzipStd(t, randomBytes(scaled(512<<10), 9), 6)},
		{"zeros", make([]byte, scaled(16<<20)), gzipKlaus(t, make([]byte, scaled(16<<20)), 9)},
	}
	for _, c := range cases {
		for _, span := range []int64{MinSpan, 0} {
			t.Run(fmt.Sprintf("%s/span%d", c.name, span), func(t *testing.T) {
				ix := buildIndex(t, c.gz, Options{Span: span})
				if ix.Size() != int64(len(c.data)) || ix.Members() != 1 || ix.CompressedSize() != int64(len(c.gz)) {
					t.Fatalf("Size %d, Members %d, CompressedSize %d; want %d, 1, %d",
						ix.Size(), ix.Members(), ix.CompressedSize(), len(c.data), len(c.gz))
				}
				if len(ix.Warnings()) != 0 {
					t.Fatalf("warnings: %q", ix.Warnings())
				}
				checkSpacing(t, ix, span)
				rd := NewReader(bytes.NewReader(c.gz), int64(len(c.gz)), ix)
				checkReads(t, rd, c.data, 30, 70<<10, int64(len(c.name)))
			})
		}
	}
}

// TestBuildHugeBlock indexes streams made of one deflate block each: the
// checkpoints must still come every span, inside the block, and reads
// from them must be right.
func TestBuildHugeBlock(t *testing.T) {
	data := realBytes(t, scaled(1<<20))
	flit, fdist := fixedLens()
	lit, dist := dynamicLens()
	var runs []token
	for _, c := range data {
		runs = append(runs, token{lit: int(c)})
	}
	for name, enc := range map[string]func(w *bitWriter){
		"fixed":   func(w *bitWriter) { w.huffmanBlock(lz77(data), flit, fdist, true, true) },
		"dynamic": func(w *bitWriter) { w.huffmanBlock(runs, lit, dist, false, true) },
	} {
		t.Run(name, func(t *testing.T) {
			var w bitWriter
			enc(&w)
			gz := member(w.bytes(), data)
			ix := buildIndex(t, gz, Options{Span: MinSpan})
			mid := 0
			for _, cp := range ix.cps {
				if cp.hdr >= 0 {
					mid++
				}
			}
			if mid < len(data)/MinSpan-1 {
				t.Fatalf("%d of %d checkpoints inside the block, want about %d", mid, len(ix.cps), len(data)/MinSpan)
			}
			checkSpacing(t, ix, MinSpan)
			checkReads(t, NewReader(bytes.NewReader(gz), int64(len(gz)), ix), data, 50, 40<<10, 3)
		})
	}
}

// runTool runs a command with stdin and returns its stdout.
func runTool(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.Bytes())
	}
	return out.Bytes()
}

// TestBuildGzipTool checks streams written by gzip and pigz, and the
// decompressed bytes against zcat.
func TestBuildGzipTool(t *testing.T) {
	data := realBytes(t, scaled(2<<20))
	tools := []struct {
		tool string
		args []string
	}{
		{"gzip", []string{"-1", "-c"}},
		{"gzip", []string{"-9", "-c"}},
		{"pigz", []string{"-6", "-c", "-p", "2", "-b", "128"}},
		{"pigz", []string{"-6", "-c", "-i", "-p", "2", "-b", "64"}},
	}
	for _, tc := range tools {
		t.Run(tc.tool+strings.Join(tc.args, ""), func(t *testing.T) {
			testutil.RequireTool(t, tc.tool)
			testutil.RequireTool(t, "zcat")
			// A named file, so that gzip stores its name in the header.
			dir := t.TempDir()
			src := filepath.Join(dir, "disk1.vmdk")
			if err := os.WriteFile(src, data, 0o600); err != nil {
				t.Fatal(err)
			}
			gz := runTool(t, nil, tc.tool, append(tc.args, "-N", src)...)
			if zc := runTool(t, gz, "zcat"); !bytes.Equal(zc, data) {
				t.Fatal("zcat does not give the data back")
			}
			ix := buildIndex(t, gz, Options{Span: 512 << 10})
			checkReads(t, NewReader(bytes.NewReader(gz), int64(len(gz)), ix), data, 30, 200<<10, 11)
		})
	}
}

// gzipHeader builds a member header with the given flags and fields.
func gzipHeader(flags byte, extra []byte, name, comment string, hcrc bool) []byte {
	b := []byte{gzID1, gzID2, gzDeflate, flags, 1, 2, 3, 4, 0, 3}
	if extra != nil {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(extra)))
		b = append(b, extra...)
	}
	if name != "" {
		b = append(append(b, name...), 0)
	}
	if comment != "" {
		b = append(append(b, comment...), 0)
	}
	if hcrc {
		b = binary.LittleEndian.AppendUint16(b, uint16(crc32.ChecksumIEEE(b)))
	}
	return b
}

func rawDeflate(t testing.TB, data []byte) []byte {
	gz := gzipStd(t, data, 6)
	return gz[10 : len(gz)-8]
}

func withTrailer(b, data []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(data))
	return binary.LittleEndian.AppendUint32(b, uint32(len(data)))
}

// TestBuildHeaders covers the optional header fields, and a name far
// longer than any buffer.
func TestBuildHeaders(t *testing.T) {
	data := textBytes(100<<10, 4)
	def := rawDeflate(t, data)
	long := strings.Repeat("n", 600<<10)
	cases := []struct {
		name string
		hdr  []byte
		want error
	}{
		{"extra", gzipHeader(flagExtra, []byte("AB\x02\x00xy"), "", "", false), nil},
		{"name and comment", gzipHeader(flagName|flagComment, nil, "disk1.vmdk", "made by a test", false), nil},
		{"long name", gzipHeader(flagName, nil, long, "", false), nil},
		{"all fields with header CRC", gzipHeader(flagExtra|flagName|flagComment|flagHdrCRC|flagText, []byte{1, 2, 3, 4}, "a", "b", true), nil},
		{"wrong header CRC", func() []byte {
			h := gzipHeader(flagName|flagHdrCRC, nil, "a", "", true)
			h[len(h)-1] ^= 1
			return h
		}(), ErrHeader},
		{"method 7", func() []byte { h := gzipHeader(0, nil, "", "", false); h[2] = 7; return h }(), ErrHeader},
		{"reserved flag", gzipHeader(0x20, nil, "", "", false), ErrHeader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gz := withTrailer(concat(c.hdr, def), data)
			ix, err := Build(bytes.NewReader(gz), int64(len(gz)), 0, nil)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkReads(t, NewReader(bytes.NewReader(gz), int64(len(gz)), ix), data, 20, 50<<10, 1)
		})
	}
}

// TestBuildMultiMember checks concatenated members, empty ones included,
// reading across every boundary.
func TestBuildMultiMember(t *testing.T) {
	real := realBytes(t, scaled(4<<20))
	q := len(real) / 4
	parts := [][]byte{real[:q], nil, textBytes(scaled(300<<10), 8), real[q : 3*q], {'z'}, nil, real[3*q:]}
	var gz, data []byte
	var bounds []int64
	for i, p := range parts {
		if i%2 == 0 {
			gz = append(gz, gzipStd(t, p, 6)...)
		} else {
			gz = append(gz, gzipKlaus(t, p, 3)...)
		}
		data = append(data, p...)
		bounds = append(bounds, int64(len(data)))
	}
	ix := buildIndex(t, gz, Options{Span: 256 << 10})
	if ix.Members() != int64(len(parts)) {
		t.Fatalf("Members() = %d, want %d", ix.Members(), len(parts))
	}
	rd := NewReader(bytes.NewReader(gz), int64(len(gz)), ix)
	checkReads(t, rd, data, 50, 300<<10, 5)
	for _, b := range bounds {
		off := max(0, b-100)
		p := make([]byte, 200)
		n, err := rd.ReadAt(p, off)
		if want := min(int64(len(data)), off+200) - off; int64(n) != want || !bytes.Equal(p[:n], data[off:off+want]) {
			t.Fatalf("read across the member boundary at %d: %d bytes, %v", b, n, err)
		}
	}
	checkSpacing(t, ix, 256<<10)
}

// TestBuildManyMembers covers thousands of small members and of empty
// ones: checkpoints then come from the compressed distance, since the
// decompressed one hardly grows.
func TestBuildManyMembers(t *testing.T) {
	empty := gzipStd(t, nil, 6)
	var gz, data []byte
	var b bytes.Buffer
	w, _ := stdgzip.NewWriterLevel(&b, 1)
	for i := range 3000 {
		p := textBytes(100+i%50, int64(i))
		b.Reset()
		w.Reset(&b)
		w.Write(p)
		w.Close()
		gz = append(gz, b.Bytes()...)
		data = append(data, p...)
		for range 10 {
			gz = append(gz, empty...)
		}
	}
	ix := buildIndex(t, gz, Options{Span: MinSpan})
	if ix.Members() != 33000 {
		t.Fatalf("Members() = %d, want 33000", ix.Members())
	}
	if min := int64(len(gz)) / (MinSpan + 1024); int64(ix.Checkpoints()) < min {
		t.Fatalf("%d checkpoints for %d compressed bytes, want at least %d", ix.Checkpoints(), len(gz), min)
	}
	checkSpacing(t, ix, MinSpan)
	checkReads(t, NewReader(bytes.NewReader(gz), int64(len(gz)), ix), data, 100, 5000, 2)
}

// TestBuildThinning caps the checkpoints far below what the span asks
// for: the span doubles instead, and reads stay right.
func TestBuildThinning(t *testing.T) {
	data := realBytes(t, scaled(2<<20))
	gz := gzipKlaus(t, data, 5)
	for _, maxCP := range []int{4, 5, 9, 50} {
		ix := buildIndex(t, gz, Options{Span: MinSpan, MaxCheckpoints: maxCP})
		if ix.Checkpoints() > maxCP || (len(data)/MinSpan > maxCP && ix.Span() <= MinSpan) {
			t.Fatalf("max %d: %d checkpoints, span %d", maxCP, ix.Checkpoints(), ix.Span())
		}
		if ix.Span() > int64(len(data))/int64(maxCP)*4 {
			t.Fatalf("max %d: span %d is more than needed for %d bytes", maxCP, ix.Span(), len(data))
		}
		checkSpacing(t, ix, MinSpan)
		checkReads(t, NewReader(bytes.NewReader(gz), int64(len(gz)), ix), data, 20, 10<<10, int64(maxCP))
	}
}

// TestBuildRejects covers what gzip -t rejects, and zero padding, which it
// tolerates.
func TestBuildRejects(t *testing.T) {
	data := realBytes(t, 100<<10)
	gz := gzipStd(t, data, 6)
	stored := gzipStd(t, data[:50<<10], 0)
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x55
		return b
	}
	cases := []struct {
		name string
		gz   []byte
		want error
	}{
		{"empty", nil, ErrNotGzip},
		{"text", []byte("not compressed at all"), ErrNotGzip},
		{"first magic byte only", []byte{gzID1}, ErrTruncated},
		{"header only", gz[:10], ErrTruncated},
		{"no trailer", gz[:len(gz)-8], ErrTruncated},
		{"half a trailer", gz[:len(gz)-3], ErrTruncated},
		{"CRC-32 mismatch", flip(gz, len(gz)-6), ErrChecksum},
		{"ISIZE mismatch", flip(gz, len(gz)-2), ErrChecksum},
		{"stored byte changed", flip(stored, 5000), ErrChecksum},
		{"block type changed", func() []byte { b := bytes.Clone(gz); b[10] |= 6; return b }(), ErrCorrupt},
		{"trailing garbage", concat(gz, []byte("junk")), ErrTrailingData},
		{"zeros then garbage", concat(gz, make([]byte, 100), []byte{1}), ErrTrailingData},
		{"second member cut after its magic byte", concat(gz, []byte{gzID1}), ErrTruncated},
		{"second member truncated", concat(gz, gz[:len(gz)/2]), ErrTruncated},
		{"second member corrupt", concat(gz, flip(gz, len(gz)-5)), ErrChecksum},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(bytes.NewReader(c.gz), int64(len(c.gz)), 0, nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "gzindex: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}

	t.Run("every truncation", func(t *testing.T) {
		first := gzipStd(t, data[:20<<10], 9)
		small := concat(first, gzipHeader(flagName, nil, "b", "", false), rawDeflate(t, data[:3000]))
		small = withTrailer(small, data[:3000])
		for cut := 1; cut < len(small); cut += 1 + cut/300*6 {
			if cut == len(first) {
				continue // a whole first member: valid
			}
			_, err := Build(bytes.NewReader(small[:cut]), int64(cut), 0, nil)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("cut at %d of %d: got %v, want ErrTruncated", cut, len(small), err)
			}
		}
	})

	t.Run("damaged bytes", func(t *testing.T) {
		// Any change to the deflate data must fail: corrupt data, a CRC
		// mismatch, or data that no longer ends where it did.
		step := 89
		if raceEnabled {
			step *= 4
		}
		for i := 10; i < len(gz)-8; i += step {
			_, err := Build(bytes.NewReader(flip(gz, i)), int64(len(gz)), 0, nil)
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTrailingData) {
				t.Fatalf("byte %d changed: got %v", i, err)
			}
		}
	})

	t.Run("zero padding", func(t *testing.T) {
		padded := concat(gz, gz, make([]byte, 5000))
		ix, err := Build(bytes.NewReader(padded), int64(len(padded)), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if w := ix.Warnings(); len(w) != 1 || !strings.Contains(w[0], "5000 bytes of zero padding") {
			t.Fatalf("warnings %q", w)
		}
		checkReads(t, NewReader(bytes.NewReader(padded), int64(len(padded)), ix), concat(data, data), 20, 10<<10, 1)
	})

	t.Run("bad arguments", func(t *testing.T) {
		if _, err := Build(nil, 10, 0, nil); err == nil {
			t.Fatal("nil reader accepted")
		}
		if _, err := Build(bytes.NewReader(gz), -1, 0, nil); err == nil {
			t.Fatal("negative size accepted")
		}
	})

	t.Run("reader shorter than its size", func(t *testing.T) {
		_, err := Build(bytes.NewReader(gz[:len(gz)/2]), int64(len(gz)), 0, nil)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("got %v, want ErrTruncated", err)
		}
	})

	t.Run("reader error", func(t *testing.T) {
		boom := errors.New("disk on fire")
		r := failingReader{bytes.NewReader(gz), int64(len(gz) / 2), boom}
		_, err := Build(r, int64(len(gz)), 0, nil)
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want the reader's error", err)
		}
	})
}

// failingReader fails every read that reaches past at.
type failingReader struct {
	r   io.ReaderAt
	at  int64
	err error
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off <= f.at && f.at < off+int64(len(p)) {
		return 0, f.err
	}
	return f.r.ReadAt(p, off)
}

// bomb is a gzip member of n zero bytes in one fixed block of maximal
// matches, about 1000 times smaller than n.
func bomb(n int) []byte {
	var w bitWriter
	w.bits(1, 1)
	w.bits(1, 2)
	w.code(0x30, 8) // literal 0
	for left := n - 1; left > 0; {
		l := min(left, maxMatch)
		if l < 3 {
			w.code(0x30, 8)
			left--
			continue
		}
		s, e, nb := lengthSym(l)
		if s < 280 {
			w.code(uint32(s-256), 7)
		} else {
			w.code(uint32(0xc0+s-280), 8)
		}
		w.bits(uint64(e), nb)
		w.code(0, 5) // distance 1
		left -= l
	}
	w.code(0, 7) // end of block
	b := concat([]byte{gzID1, gzID2, gzDeflate, 0, 0, 0, 0, 0, 0, 255}, w.bytes())
	crc := crc32.NewIEEE()
	zero := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(zero) {
		crc.Write(zero[:min(left, len(zero))])
	}
	b = binary.LittleEndian.AppendUint32(b, crc.Sum32())
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// TestBuildProgressAndCancel builds a decompression bomb: progress must
// grow to the stream size, and cancelling must stop Build.
func TestBuildProgressAndCancel(t *testing.T) {
	gz := bomb(64 << 20)
	var calls []int64
	ix, err := BuildContext(t.Context(), bytes.NewReader(gz), int64(len(gz)), Options{
		Progress: func(done int64) { calls = append(calls, done) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Size() != 64<<20 {
		t.Fatalf("Size() = %d", ix.Size())
	}
	if len(calls) == 0 || calls[len(calls)-1] != int64(len(gz)) {
		t.Fatalf("progress calls %v, want the last to be %d", calls, len(gz))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i] < calls[i-1] {
			t.Fatalf("progress went back: %v", calls)
		}
	}
	checkSpacing(t, ix, DefaultSpan)
	p := make([]byte, 4096)
	if n, err := NewReader(bytes.NewReader(gz), int64(len(gz)), ix).ReadAt(p, 50<<20); n != len(p) || err != nil || !bytes.Equal(p, make([]byte, len(p))) {
		t.Fatalf("read from the bomb: %d, %v", n, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	reads := 0
	r := countingReader{r: bytes.NewReader(gz), n: &reads, hook: func() {
		if reads == 3 {
			cancel()
		}
	}}
	_, err = BuildContext(ctx, r, int64(len(gz)), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// countingReader counts reads and calls hook after each.
type countingReader struct {
	r     io.ReaderAt
	n     *int
	bytes *int64
	hook  func()
}

func (c countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	*c.n++
	if c.bytes != nil {
		*c.bytes += int64(n)
	}
	if c.hook != nil {
		c.hook()
	}
	return n, err
}

// TestBuildRealFixtures compresses the real-world disks and appliances,
// which other projects' tools made, and reads them back through an index.
func TestBuildRealFixtures(t *testing.T) {
	dir := testutil.RealFixtures(t)
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatalf("no fixtures in %s", dir)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		t.Run(rel, func(t *testing.T) {
			gzs := [][]byte{gzipKlaus(t, data, 1)}
			if !raceEnabled {
				gzs = append(gzs, gzipStd(t, data, 6))
			}
			for _, gz := range gzs {
				ix := buildIndex(t, gz, Options{Span: MinSpan})
				checkReads(t, NewReader(bytes.NewReader(gz), int64(len(gz)), ix), data, scaled(32), 64<<10, 1)
			}
		})
	}
	t.Logf("%d fixtures compressed two ways and read back", len(files))
}
