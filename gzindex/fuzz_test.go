package gzindex

import (
	"bytes"
	stdflate "compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"testing"
)

// fuzzLimit caps the decompressed size the fuzz targets check: beyond it
// an input is a bomb, fine to serve but too slow to compare.
const fuzzLimit = 8 << 20

// refGunzip is the reference: RFC 1952 framing written plainly, around
// compress/flate, which reads no byte past the deflate data from a
// bytes.Reader. It accepts what gzip -t accepts, zero padding included.
func refGunzip(b []byte) ([]byte, error) {
	var out []byte
	r := bytes.NewReader(b)
	for members := 0; ; members++ {
		rest := b[len(b)-r.Len():]
		if members > 0 {
			if len(rest) == 0 {
				return out, nil
			}
			if rest[0] != gzID1 || len(rest) > 1 && rest[1] != gzID2 {
				if bytes.Count(rest, []byte{0}) == len(rest) {
					return out, nil
				}
				return nil, errors.New("trailing garbage")
			}
		}
		var hdr [10]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		if hdr[0] != gzID1 || hdr[1] != gzID2 || hdr[2] != 8 || hdr[3]&0xe0 != 0 {
			return nil, errors.New("bad header")
		}
		crc := crc32.ChecksumIEEE(hdr[:])
		read := func(n int) ([]byte, error) {
			p := make([]byte, n)
			_, err := io.ReadFull(r, p)
			crc = crc32.Update(crc, crc32.IEEETable, p)
			return p, err
		}
		if hdr[3]&flagExtra != 0 {
			x, err := read(2)
			if err != nil {
				return nil, err
			}
			if _, err := read(int(binary.LittleEndian.Uint16(x))); err != nil {
				return nil, err
			}
		}
		for _, fl := range []byte{flagName, flagComment} {
			if hdr[3]&fl == 0 {
				continue
			}
			for {
				c, err := read(1)
				if err != nil {
					return nil, err
				}
				if c[0] == 0 {
					break
				}
			}
		}
		if hdr[3]&flagHdrCRC != 0 {
			want := uint16(crc)
			x, err := read(2)
			if err != nil {
				return nil, err
			}
			if binary.LittleEndian.Uint16(x) != want {
				return nil, errors.New("header CRC")
			}
		}
		data, err := io.ReadAll(io.LimitReader(stdflate.NewReader(r), fuzzLimit+1))
		if err != nil {
			return nil, err
		}
		if len(out)+len(data) > fuzzLimit {
			return nil, errTooBig
		}
		var tr [8]byte
		if _, err := io.ReadFull(r, tr[:]); err != nil {
			return nil, err
		}
		if binary.LittleEndian.Uint32(tr[:]) != crc32.ChecksumIEEE(data) || binary.LittleEndian.Uint32(tr[4:]) != uint32(len(data)) {
			return nil, errors.New("trailer mismatch")
		}
		out = append(out, data...)
	}
}

var errTooBig = errors.New("too big to compare")

var sentinels = []error{ErrNotGzip, ErrHeader, ErrCorrupt, ErrChecksum, ErrTruncated, ErrTrailingData}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fuzzStreams are the test's gzip streams, small enough to seed fuzzing.
func fuzzStreams(t testing.TB) [][]byte {
	text := textBytes(20<<10, 1)
	real := realBytes(t, 40<<10)
	var w bitWriter
	lit, dist := fixedLens()
	w.huffmanBlock(lz77(text[:5000]), lit, dist, true, true)
	fixed := member(w.bytes(), text[:5000])
	one := gzipStd(t, real, 6)
	return [][]byte{
		one,
		gzipStd(t, nil, 6),
		gzipStd(t, real[:3000], 0),
		gzipKlaus(t, text, 1),
		gzipStd(t, text, -2),
		fixed,
		concat(one, gzipKlaus(t, text[:100], 9), make([]byte, 10)),
		withTrailer(concat(gzipHeader(flagExtra|flagName|flagComment|flagHdrCRC, []byte{1, 2}, "n", "c", true), rawDeflate(t, text[:999])), text[:999]),
		one[:len(one)/2],
		concat(one, []byte("junk")),
		bomb(100 << 10),
	}
}

func FuzzBuild(f *testing.F) {
	for _, s := range fuzzStreams(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, gz []byte) {
		want, refErr := refGunzip(gz)
		if errors.Is(refErr, errTooBig) {
			return // a bomb: correct to serve, too slow to compare here
		}
		ix, err := BuildContext(t.Context(), bytes.NewReader(gz), int64(len(gz)), Options{Span: MinSpan, MaxCheckpoints: 8})
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Build: %v; reference: %v", err, refErr)
		}
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("Build error %v wraps no sentinel", err)
			}
			return
		}
		if ix.Size() != int64(len(want)) {
			t.Fatalf("Size() = %d, reference %d", ix.Size(), len(want))
		}
		rd := NewReader(bytes.NewReader(gz), int64(len(gz)), ix)
		got, err := io.ReadAll(io.NewSectionReader(rd, 0, rd.Size()))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read back %d bytes (%v), reference %d", len(got), err, len(want))
		}
		if len(want) > 0 {
			for _, off := range []int64{int64(len(want)) - 1, int64(len(want)) / 3, int64(len(want)) * 2 / 3} {
				p := make([]byte, 1+len(want)/5)
				n, _ := rd.ReadAt(p, off)
				if !bytes.Equal(p[:n], want[off:off+int64(n)]) || n == 0 {
					t.Fatalf("ReadAt(%d bytes at %d) = %d bytes, wrong", len(p), off, n)
				}
			}
		}
		enc, err := ix.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(enc)
		if err != nil || !reflect.DeepEqual(back, ix) {
			t.Fatalf("Unmarshal(MarshalBinary()) = %v", err)
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	streams := fuzzStreams(f)
	stream := streams[0]
	for _, s := range streams[:8] {
		ix, err := Build(bytes.NewReader(s), int64(len(s)), MinSpan, nil)
		if err != nil {
			f.Fatal(err)
		}
		enc, err := ix.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
		f.Add(resign(concat(enc[:40], []byte{0xff}, enc[41:])))
		split, err := ix.MarshalSplit()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(split)
		f.Add(concat(split[:len(split)-10], []byte{1}, split[len(split)-9:]))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The digest rejects nearly every mutation, so each input is also
		// tried re-signed, which reaches the structural checks.
		for _, in := range [][]byte{b, resign(b)} {
			fuzzIndex(t, in, stream)
		}
	})
}

func fuzzIndex(t *testing.T, b, stream []byte) {
	ix, err := Unmarshal(b)
	if err != nil {
		if !errors.Is(err, ErrIndex) {
			t.Fatalf("error %v does not wrap ErrIndex", err)
		}
		return
	}
	// A split index's windows are checked only when read: re-encoding
	// one may fail on them, with ErrIndex.
	split := ix.src != nil
	enc, err := ix.MarshalBinary()
	if err != nil {
		if split && errors.Is(err, ErrIndex) {
			return
		}
		t.Fatal(err)
	}
	back, err := Unmarshal(enc)
	switch {
	case err != nil && split && errors.Is(err, ErrIndex):
		return
	case err != nil:
		t.Fatalf("re-encoding does not round-trip: %v", err)
	case !split && !reflect.DeepEqual(back, ix):
		t.Fatal("re-encoding does not round-trip")
	}
	if again, err := back.MarshalBinary(); err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("re-encoding does not round-trip: %v", err)
	}
	// Serving any stream with any accepted index must not panic or hang;
	// errors are expected when the index is not the stream's.
	rd := NewReader(bytes.NewReader(stream), int64(len(stream)), ix)
	for _, off := range []int64{0, ix.Size() / 2, ix.Size() - 10} {
		if off >= 0 && off < 1<<20 {
			rd.ReadAt(make([]byte, 100), off)
		}
	}
}

// FuzzInflate compares the deflate decoder with compress/flate on any
// input, with tiny buffers so that every boundary is crossed.
func FuzzInflate(f *testing.F) {
	for _, in := range [][]byte{nil, textBytes(3000, 1), realBytes(f, 20<<10), make([]byte, 5000)} {
		for _, d := range deflaters() {
			f.Add(d.enc(f, in))
		}
	}
	f.Fuzz(func(t *testing.T, comp []byte) {
		want, refErr := io.ReadAll(io.LimitReader(stdflate.NewReader(bytes.NewReader(comp)), fuzzLimit+1))
		if len(want) > fuzzLimit {
			return // a bomb: correct to decode, too slow to compare here
		}
		for _, buf := range []struct{ in, out int }{{16, 77}, {4096, 64 << 10}} {
			got, err := inflateAll(comp, buf.in, buf.out)
			if (err == nil) != (refErr == nil) {
				t.Fatalf("buffers %v: %v; compress/flate: %v", buf, err, refErr)
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) {
					t.Fatalf("error %v is neither ErrCorrupt nor ErrTruncated", err)
				}
				continue
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("buffers %v: output differs from compress/flate", buf)
			}
		}
	})
}
