package gzindex

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"sync"
	"testing"
)

var (
	samplesOnce sync.Once
	samples     []sample
)

type sample struct {
	name     string
	gz, data []byte
	ix       *Index
}

// sampleIndexes returns small indexes of different shapes with their
// streams and data: one member, several members with padding, and a
// thinned index. They are built once per test process.
func sampleIndexes(t testing.TB) []sample {
	samplesOnce.Do(func() { samples = makeSamples(t) })
	if samples == nil {
		t.Fatal("the sample indexes could not be built (see the first test that needed them)")
	}
	return samples
}

func makeSamples(t testing.TB) []sample {
	real := realBytes(t, 1<<20)
	one := gzipStd(t, real, 6)
	multi := concat(gzipStd(t, real[:300<<10], 0), gzipStd(t, nil, 1), gzipKlaus(t, real[300<<10:], 9), make([]byte, 77))
	var res []sample
	add := func(name string, gz, data []byte, opt Options) {
		res = append(res, sample{name, gz, data, buildIndex(t, gz, opt)})
	}
	add("one member", one, real, Options{Span: MinSpan})
	add("members and padding", multi, real, Options{Span: 64 << 10})
	add("thinned", multi, real, Options{Span: MinSpan, MaxCheckpoints: 6})
	return res
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, s := range sampleIndexes(t) {
		t.Run(s.name, func(t *testing.T) {
			enc, err := s.ix.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			ix, err := Unmarshal(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ix, s.ix) {
				t.Fatal("the decoded index differs")
			}
			var viaMethod Index
			if err := viaMethod.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(&viaMethod, s.ix) {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			raw := 0
			for _, cp := range ix.cps {
				raw += cp.wlen
			}
			t.Logf("%d checkpoints, %d window bytes, encoded in %d bytes", ix.Checkpoints(), raw, len(enc))
			if !ix.Matches(bytes.NewReader(s.gz), int64(len(s.gz))) {
				t.Fatal("Matches rejects the indexed stream")
			}
			checkReads(t, NewReader(bytes.NewReader(s.gz), int64(len(s.gz)), ix), s.data, 30, 30<<10, 1)

			// Matches notices a change at either end, or in size.
			for _, other := range [][]byte{
				concat([]byte{0}, s.gz[1:]),
				concat(s.gz[:len(s.gz)-1], []byte{s.gz[len(s.gz)-1] ^ 1}),
				s.gz[:len(s.gz)-1],
				concat(s.gz, []byte{0}),
			} {
				if ix.Matches(bytes.NewReader(other), int64(len(other))) {
					t.Fatal("Matches accepts a changed stream")
				}
			}
		})
	}
}

// resign replaces an encoding's digest, so that only the structural
// checks can catch what was changed.
func resign(b []byte) []byte {
	if len(b) < sha256.Size {
		return b
	}
	b = bytes.Clone(b[:len(b)-sha256.Size])
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func TestUnmarshalRejects(t *testing.T) {
	s := sampleIndexes(t)[2] // the smallest encoding
	enc, err := s.ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("damage", func(t *testing.T) {
		// Every bit of the fixed fields and the digest, and a byte in 53
		// elsewhere, flipped; and the encoding cut short anywhere.
		n := 0
		for i := range enc {
			if i > 200 && i < len(enc)-sha256.Size && i%53 != 0 {
				continue
			}
			for bit := byte(1); bit != 0; bit <<= 1 {
				b := bytes.Clone(enc)
				b[i] ^= bit
				if _, err := Unmarshal(b); !errors.Is(err, ErrIndex) {
					t.Fatalf("bit %#x of byte %d flipped: %v", bit, i, err)
				}
				n++
			}
		}
		for cut := 0; cut < len(enc); cut += 1 + cut/200*52 {
			if _, err := Unmarshal(enc[:cut]); !errors.Is(err, ErrIndex) {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			n++
		}
		t.Logf("%d damaged encodings rejected", n)
	})

	// Encodings with a valid digest but inconsistent content, made by
	// marshalling a doctored index.
	doctor := func(f func(ix *Index)) []byte {
		ix := *s.ix
		ix.cps = append([]checkpoint(nil), s.ix.cps...)
		f(&ix)
		b, err := ix.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	last := len(s.ix.cps) - 1
	cases := []struct {
		name string
		enc  []byte
	}{
		{"nothing", nil},
		{"foreign", []byte("PK\x03\x04 a zip file, not an index at all, padded to be long enough")},
		{"other version", func() []byte { b := bytes.Clone(enc); b[len(encMagic)] = 2; return resign(b) }()},
		{"no checkpoints", doctor(func(ix *Index) { ix.cps = nil })},
		{"first checkpoint not at the start", doctor(func(ix *Index) { ix.cps = ix.cps[1:] })},
		{"span too small", doctor(func(ix *Index) { ix.span = 100 })},
		{"no members", doctor(func(ix *Index) { ix.members = 0 })},
		{"members past the stream", doctor(func(ix *Index) { ix.end = ix.compressed + 1 })},
		{"checkpoint past the stream", doctor(func(ix *Index) { ix.cps[last].in = ix.compressed * 8 })},
		{"checkpoint past the data", doctor(func(ix *Index) { ix.size = ix.cps[last].out - 1 })},
		{"checkpoints out of order", doctor(func(ix *Index) { ix.cps[1], ix.cps[2] = ix.cps[2], ix.cps[1] })},
		{"window longer than 32 KiB", doctor(func(ix *Index) {
			ix.cps[1].wlen, ix.cps[1].packed, ix.cps[1].window = windowSize+1, false, make([]byte, windowSize+1)
		})},
		{"window longer than the data before it", doctor(func(ix *Index) {
			ix.cps[0].wlen, ix.cps[0].packed, ix.cps[0].window = 1, false, []byte{1}
		})},
		{"packed window that is not deflate", doctor(func(ix *Index) {
			ix.cps[1].wlen, ix.cps[1].packed, ix.cps[1].window = 1000, true, []byte{0xff, 0xff, 0xff}
		})},
		{"packed window of the wrong length", doctor(func(ix *Index) { ix.cps[1].wlen-- })},
		{"block header after its checkpoint", doctor(func(ix *Index) {
			for i := range ix.cps {
				if ix.cps[i].hdr >= 0 {
					ix.cps[i].hdr = ix.cps[i].in
					return
				}
			}
			t.Fatal("no mid-block checkpoint in the sample")
		})},
		{"huge warning count", func() []byte {
			// Replace the warning count (0) with 2^40.
			b := bytes.Clone(enc[:len(enc)-sha256.Size])
			at := len(encMagic) + 1
			for range 5 {
				_, n := binary.Uvarint(b[at:])
				at += n
			}
			at += sha256.Size
			b = concat(b[:at], binary.AppendUvarint(nil, 1<<40), b[at+1:])
			return resign(append(b, make([]byte, sha256.Size)...))
		}()},
		{"trailing bytes", resign(concat(enc[:len(enc)-sha256.Size], []byte{0}, make([]byte, sha256.Size)))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Unmarshal(c.enc); !errors.Is(err, ErrIndex) {
				t.Fatalf("got %v, want ErrIndex", err)
			}
			var ix Index
			if err := ix.UnmarshalBinary(c.enc); !errors.Is(err, ErrIndex) {
				t.Fatalf("UnmarshalBinary: got %v, want ErrIndex", err)
			}
		})
	}
}
