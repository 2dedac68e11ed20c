package gzindex

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"

	kflate "github.com/klauspost/compress/flate"
)

// inflateAll decodes one raw deflate stream with the package's decoder,
// using an input buffer of inSize bytes and outStep bytes of output per
// fill, so that small values exercise every buffer boundary.
func inflateAll(data []byte, inSize, outStep int) ([]byte, error) {
	f := newInflater(windowSize+max(outStep, 64<<10)+outSlack, inSize)
	f.src.reset(bytesAt(data), int64(len(data)))
	f.startStream()
	var res []byte
	for f.state != stDone {
		if len(f.out)-outSlack-f.op < outStep {
			f.slide()
		}
		before := f.op
		err := f.fill(f.op+outStep, math.MaxInt64)
		res = append(res, f.out[before:f.op]...)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// inflateRef decodes with compress/flate, the reference.
func inflateRef(data []byte) ([]byte, error) {
	return io.ReadAll(stdflate.NewReader(bytes.NewReader(data)))
}

type deflater struct {
	name string
	enc  func(t testing.TB, data []byte) []byte
}

func deflaters() []deflater {
	var ds []deflater
	for _, l := range []int{stdflate.HuffmanOnly, 0, 1, 2, 4, 6, 9} {
		ds = append(ds, deflater{fmt.Sprintf("flate%d", l), func(t testing.TB, data []byte) []byte {
			var b bytes.Buffer
			w, err := stdflate.NewWriter(&b, l)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			w.Close()
			return b.Bytes()
		}})
	}
	for _, l := range []int{kflate.HuffmanOnly, 0, 1, 3, 5, 7, 9} {
		ds = append(ds, deflater{fmt.Sprintf("klauspost%d", l), func(t testing.TB, data []byte) []byte {
			var b bytes.Buffer
			w, err := kflate.NewWriter(&b, l)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			w.Close()
			return b.Bytes()
		}})
	}
	ds = append(ds,
		deflater{"fixed", func(t testing.TB, data []byte) []byte {
			var w bitWriter
			lit, dist := fixedLens()
			w.huffmanBlock(lz77(data), lit, dist, true, true)
			return w.bytes()
		}},
		deflater{"stored", func(t testing.TB, data []byte) []byte {
			var w bitWriter
			for len(data) > 65535 {
				w.stored(data[:65535], false)
				data = data[65535:]
			}
			w.stored(data, true)
			return w.bytes()
		}},
		deflater{"mixed", func(t testing.TB, data []byte) []byte {
			// Each third of the data in another block type, and an empty
			// stored block (a sync flush) in between.
			var w bitWriter
			a, b := len(data)/3, 2*len(data)/3
			lit, dist := fixedLens()
			w.huffmanBlock(lz77(data[:a]), lit, dist, true, false)
			w.stored(nil, false)
			for p := data[a:b]; ; p = p[65535:] {
				if len(p) <= 65535 {
					w.stored(p, false)
					break
				}
				w.stored(p[:65535], false)
			}
			w.huffmanBlock(lz77(data[b:]), lit, dist, true, true)
			return w.bytes()
		}},
	)
	return ds
}

func inputs(t testing.TB) []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one", []byte{'x'}},
		{"zeros", make([]byte, scaled(300<<10))},
		{"random", randomBytes(scaled(200<<10), 1)},
		{"text", textBytes(scaled(500<<10), 2)},
		{"real", realBytes(t, scaled(1<<20))},
		{"mixed", concat(textBytes(70<<10, 3), randomBytes(70<<10, 4), make([]byte, 70<<10), realBytes(t, 1<<20)[300<<10:400<<10])},
	}
}

// TestInflateMatchesFlate decodes every input compressed by every encoder
// and checks the result against the input and compress/flate, with small
// and large buffers.
func TestInflateMatchesFlate(t *testing.T) {
	n := 0
	for _, in := range inputs(t) {
		for i, d := range deflaters() {
			if raceEnabled && i%2 == 1 {
				continue // half the encoders are enough to look for races
			}
			comp := d.enc(t, in.data)
			ref, err := inflateRef(comp)
			if err != nil || !bytes.Equal(ref, in.data) {
				t.Fatalf("%s/%s: compress/flate does not round-trip: %v", in.name, d.name, err)
			}
			for _, buf := range []struct{ in, out int }{{128 << 10, 256 << 10}, {8, 300}, {13, 1}} {
				if buf.in < 100 && len(in.data) > 200<<10 {
					continue // tiny buffers are slow; small inputs cover them
				}
				got, err := inflateAll(comp, buf.in, buf.out)
				if err != nil {
					t.Fatalf("%s/%s (buffers %v): %v", in.name, d.name, buf, err)
				}
				if !bytes.Equal(got, in.data) {
					t.Fatalf("%s/%s (buffers %v): output differs", in.name, d.name, buf)
				}
				n++
			}
		}
	}
	t.Logf("%d decodings match", n)
}

// dynamicLens is a small valid dynamic code: literals 0-253 in 8 bits,
// 254, 255, end of block and the length-3 symbol in 9 bits, and a single
// one-bit distance code for distance 1 (the degenerate case zlib allows).
func dynamicLens() ([]uint8, []uint8) {
	lit := make([]uint8, 258)
	for i := range lit {
		lit[i] = 8
	}
	lit[254], lit[255], lit[256], lit[257] = 9, 9, 9, 9
	return lit, []uint8{1}
}

// TestInflateRejects checks hand-made invalid streams: each must fail with
// the expected error, and compress/flate must reject it too.
func TestInflateRejects(t *testing.T) {
	lit, dist := dynamicLens()
	with := func(f func(lit, dist []uint8) ([]uint8, []uint8)) (l, d []uint8) {
		return f(append([]uint8{}, lit...), append([]uint8{}, dist...))
	}
	dyn := func(toks []token, lit, dist []uint8) []byte {
		var w bitWriter
		w.huffmanBlock(toks, lit, dist, false, true)
		return w.bytes()
	}
	flit, fdist := fixedLens()
	fixed := func(toks []token) []byte {
		var w bitWriter
		w.huffmanBlock(toks, flit, fdist, true, true)
		return w.bytes()
	}
	abc := []token{{lit: 'a'}, {lit: 'b'}, {lit: 'c'}}
	cases := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"reserved block type", []byte{0x07}, ErrCorrupt},
		{"stored length complement", []byte{0x01, 0x05, 0x00, 0x00, 0x00}, ErrCorrupt},
		{"stored block cut short", []byte{0x01, 0x05, 0x00, 0xfa, 0xff, 'a', 'b'}, ErrTruncated},
		{"empty input", nil, ErrTruncated},
		{"no final block", func() []byte { var w bitWriter; w.stored([]byte("ab"), false); return w.bytes() }(), ErrTruncated},
		{"distance before the start", fixed([]token{{lit: 'a'}, {length: 3, dist: 2}}), ErrCorrupt},
		{"distance far before the start", fixed([]token{{lit: 'a'}, {length: 10, dist: 30000}}), ErrCorrupt},
		{"fixed literal/length symbol 286", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(1, 2)
			w.code(0xc0+286-280, 8)
			w.bits(0, 16)
			return w.bytes()
		}(), ErrCorrupt},
		{"fixed distance symbol 30", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(1, 2)
			w.code('a'+0x30, 8)
			w.code(1, 7) // length 3
			w.code(30, 5)
			w.bits(0, 16)
			return w.bytes()
		}(), ErrCorrupt},
		{"valid dynamic block", dyn(append(abc, token{length: 3, dist: 1}), lit, dist), nil},
		{"incomplete literal code", dyn(abc, func() []uint8 {
			l, _ := with(func(l, d []uint8) ([]uint8, []uint8) { l[255] = 0; return l, d })
			return l
		}(), dist), ErrCorrupt},
		{"over-subscribed literal code", dyn(abc, func() []uint8 {
			l, _ := with(func(l, d []uint8) ([]uint8, []uint8) { return append(l, 9), d })
			return l
		}(), dist), ErrCorrupt},
		{"no end of block code", dyn(nil, func() []uint8 {
			l := make([]uint8, 257)
			for i := range 256 {
				l[i] = 8
			}
			return l
		}(), dist), ErrCorrupt},
		{"unused distance pattern", dyn(append(abc, token{length: 3, dist: unusedDist}), lit, dist), ErrCorrupt},
		{"match with no distance code", dyn(append(abc, token{length: 3, dist: 1}), lit, []uint8{0}), ErrCorrupt},
		{"too many literal codes", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(2, 2)
			w.bits(30, 5)
			w.bits(0, 5)
			w.bits(15, 4)
			w.bits(0, 64)
			return w.bytes()
		}(), ErrCorrupt},
		{"too many distance codes", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(2, 2)
			w.bits(0, 5)
			w.bits(30, 5)
			w.bits(15, 4)
			w.bits(0, 64)
			return w.bytes()
		}(), ErrCorrupt},
		{"invalid code length code", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(2, 2)
			w.bits(0, 5)
			w.bits(0, 5)
			w.bits(15, 4)
			for range 19 {
				w.bits(1, 3) // 19 one-bit codes: over-subscribed
			}
			w.bits(0, 64)
			return w.bytes()
		}(), ErrCorrupt},
		{"repeat with no previous length", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(2, 2)
			w.bits(0, 5)
			w.bits(0, 5)
			w.bits(0, 4) // 4 code length codes: 16, 17, 18, 0
			for range 4 {
				w.bits(2, 3) // each two bits: codes 00, 01, 10, 11
			}
			w.code(1, 2) // symbol 16 (codes: 0 00, 16 01, 17 10, 18 11)
			w.bits(0, 64)
			return w.bytes()
		}(), ErrCorrupt},
		{"repeat past the code count", func() []byte {
			var w bitWriter
			w.bits(1, 1)
			w.bits(2, 2)
			w.bits(0, 5)
			w.bits(0, 5)
			w.bits(0, 4)
			for range 4 {
				w.bits(2, 3)
			}
			for range 3 {
				w.code(3, 2)   // symbol 18
				w.bits(127, 7) // 138 zeros
			}
			w.bits(0, 64)
			return w.bytes()
		}(), ErrCorrupt},
		{"stream ends inside a code", fixed(abc)[:1], ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := inflateAll(c.stream, 4096, 64<<10)
			_, refErr := inflateRef(c.stream)
			if c.want == nil {
				if err != nil || refErr != nil {
					t.Fatalf("got %v, compress/flate %v; want success", err, refErr)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if refErr == nil {
				t.Fatalf("compress/flate accepts it")
			}
		})
	}
}

// resumePoint is a decoder state captured between two symbols, as Build
// captures it.
type resumePoint struct {
	in, hdr, out int64
	window       []byte
}

// TestResumeAnywhere stops a decoder every few bytes, in every kind of
// block, and checks that a fresh decoder resumed from each stop (bit
// offset, header offset and window only) yields the rest of the data.
func TestResumeAnywhere(t *testing.T) {
	data := concat(realBytes(t, 100<<10+scaled(300<<10))[100<<10:], textBytes(scaled(100<<10), 5))
	lit, dist := dynamicLens()
	huge := func(t testing.TB, data []byte) []byte {
		// One dynamic block for everything, with runs for its one match.
		var toks []token
		for i := 0; i < len(data); i++ {
			if i > 0 && i+3 <= len(data) && data[i] == data[i-1] && data[i+1] == data[i] && data[i+2] == data[i] {
				toks = append(toks, token{length: 3, dist: 1})
				i += 2
				continue
			}
			toks = append(toks, token{lit: int(data[i])})
		}
		var w bitWriter
		w.huffmanBlock(toks, lit, dist, false, true)
		return w.bytes()
	}
	encs := append(deflaters(), deflater{"one dynamic block", huge})
	points := 0
	for _, d := range encs {
		comp := d.enc(t, data)
		f := newInflater(windowSize+16<<10+outSlack, 512)
		f.src.reset(bytesAt(comp), int64(len(comp)))
		f.startStream()
		var stops []resumePoint
		total := int64(0)
		step := 7919 // a prime, so stops drift across block and buffer boundaries
		for f.state != stDone {
			if len(f.out)-outSlack-f.op < step {
				f.slide()
			}
			before := f.op
			// Every other stop is at the next block boundary instead.
			outStop, inStop := f.op+step, int64(math.MaxInt64)
			if len(stops)%2 == 1 {
				outStop, inStop = len(f.out), f.bitPos()/8+1
			}
			if err := f.fill(outStop, inStop); err != nil {
				t.Fatalf("%s: %v", d.name, err)
			}
			total += int64(f.op - before)
			if f.state == stDone {
				break
			}
			p := resumePoint{in: f.bitPos(), hdr: -1, out: total}
			if f.state != stHeader {
				p.hdr = f.hdrBit
			}
			p.window = bytes.Clone(f.out[max(0, f.op-windowSize):f.op])
			stops = append(stops, p)
		}
		kinds := map[blockState]int{}
		for _, p := range stops {
			g := newInflater(windowSize+64<<10+outSlack, 4096)
			g.op = copy(g.out, p.window)
			g.src.reset(bytesAt(comp), int64(len(comp)))
			g.histLo = 0
			if err := g.resume(p.in, p.hdr); err != nil {
				t.Fatalf("%s: resume at bit %d (header %d): %v", d.name, p.in, p.hdr, err)
			}
			kinds[g.state]++
			// The next 40 KiB, or the rest, must match.
			want := data[p.out:min(int64(len(data)), p.out+40<<10)]
			var got []byte
			for g.state != stDone && len(got) < len(want) {
				before := g.op
				if err := g.fill(len(g.out)-outSlack, math.MaxInt64); err != nil {
					t.Fatalf("%s: after resuming at bit %d: %v", d.name, p.in, err)
				}
				got = append(got, g.out[before:g.op]...)
			}
			if !bytes.Equal(got[:min(len(got), len(want))], want) || len(got) < len(want) {
				t.Fatalf("%s: resuming at bit %d (byte %d of output) yields different data", d.name, p.in, p.out)
			}
			points++
		}
		t.Logf("%s: %d stops (%d at block boundaries, %d in stored, %d in Huffman blocks)",
			d.name, len(stops), kinds[stHeader], kinds[stStored], kinds[stHuffman])
	}
	t.Logf("%d resumptions checked", points)
}
