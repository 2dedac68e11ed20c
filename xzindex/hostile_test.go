package xzindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/ulikunitz/xz"
)

var sentinels = []error{ErrNotXZ, ErrFormat, ErrCorrupt, ErrChecksum, ErrUnsupported, ErrDictTooLarge, ErrUnitTooLarge, ErrTooManyUnits}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fuzzOptions keep a fuzzed input's cost small.
var fuzzOptions = Options{MaxUnit: 4 << 20, MaxDict: 1 << 20, MaxUnits: 1000, Decoders: 2}

// readThrough opens file and reads it all with each LZMA2 decoder the
// build has, in pieces and out of order. Errors must wrap a sentinel.
// Decoders that read it whole must agree on its bytes, which are returned;
// one may fail where another succeeds (liblzma also checks the compressed
// size in each LZMA2 chunk header, which the Go decoder does not: a flip
// there leaves its output intact), and the caller checks the bytes it
// returns. The error is returned only when
// every decoder failed.
func readThrough(t testing.TB, file []byte) ([]byte, error) {
	var out []byte
	var firstErr error
	ok := ""
	for _, b := range backends {
		got, err := readThroughWith(t, file, b.f)
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		case ok != "" && !bytes.Equal(got, out):
			t.Fatalf("decoders disagree: %s read %d bytes, %s %d other bytes", ok, len(out), b.name, len(got))
		case ok == "":
			out, ok = got, b.name
		}
	}
	if ok != "" {
		return out, nil
	}
	return nil, firstErr
}

func readThroughWith(t testing.TB, file []byte, dec lzma2Func) ([]byte, error) {
	opt := fuzzOptions
	opt.lzma2 = dec
	x, err := Open(&strictReaderAt{t: t, b: file}, int64(len(file)), opt)
	if err != nil {
		if !isSentinel(err) {
			t.Fatalf("Open: error without a sentinel: %v", err)
		}
		return nil, err
	}
	if x.Size() > 2<<20 {
		return nil, nil
	}
	out := make([]byte, x.Size())
	// The second half first, then the first, in 100 KiB reads.
	half := x.Size() / 2
	for _, r := range [][2]int64{{half, x.Size()}, {0, half}} {
		for off := r[0]; off < r[1]; off += 100 << 10 {
			end := min(off+100<<10, r[1])
			n, err := x.ReadAt(out[off:end], off)
			if err != nil && !(err == io.EOF && off+int64(n) == x.Size()) {
				if !isSentinel(err) {
					t.Fatalf("ReadAt: error without a sentinel: %v", err)
				}
				return nil, err
			}
		}
	}
	return out, nil
}

func TestHostile(t *testing.T) {
	data := testData(48<<10, 10)
	file := xzFile(t, data, "--block-size=16KiB", "--check=crc64", "-1")
	if got, err := readThrough(t, file); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("intact file: %v", err)
	}
	// Truncations to a multiple of four, from either end: all near the
	// ends, a sample in between.
	for n := 0; n < len(file); n += 4 {
		if n > 64 && n < len(file)-256 && n%64 != 0 || n%(4*sparse) != 0 {
			continue
		}
		if _, err := readThrough(t, file[:n]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
		if _, err := readThrough(t, file[n+4:]); err == nil && n+4 < len(file) {
			t.Fatalf("suffix from %d accepted", n+4)
		}
	}
	// Every bit flipped in the structures (headers, index, footer), and a
	// sample of the data: a flip either fails or, the check being CRC64,
	// yields the original bytes.
	x := open(t, file, Options{})
	var at []int
	for i := 0; i < 12; i++ {
		at = append(at, i)
	}
	for _, b := range x.Blocks() {
		for i := int64(0); i < 16; i++ {
			at = append(at, int(b.Offset+i))
		}
		at = append(at, int(b.Offset)+b.header+5, int(b.Offset+b.Unpadded)-1)
	}
	for i := len(file) - 200; i < len(file); i++ {
		at = append(at, i)
	}
	for k, i := range at {
		if k%sparse != 0 {
			continue
		}
		for _, bit := range []int{i % 8, (i + 3) % 8, (i + 5) % 8} {
			bad := bytes.Clone(file)
			bad[i] ^= 1 << bit
			got, err := readThrough(t, bad)
			if err == nil && !bytes.Equal(got, data) {
				t.Fatalf("bit %d of byte %d flipped: wrong bytes without an error", bit, i)
			}
		}
	}
}

// mkStream builds an xz stream around an index body (indicator onward,
// without padding and CRC) and blocks, fixing up the CRCs and sizes.
func mkStream(check byte, blocks []byte, index []byte) []byte {
	flags := []byte{0, check}
	var s []byte
	s = append(s, headerMagic...)
	s = append(s, flags...)
	s = binary.LittleEndian.AppendUint32(s, crc32.ChecksumIEEE(flags))
	s = append(s, blocks...)
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	index = binary.LittleEndian.AppendUint32(index, crc32.ChecksumIEEE(index))
	s = append(s, index...)
	var f []byte
	f = binary.LittleEndian.AppendUint32(f, uint32(len(index)/4-1))
	f = append(f, flags...)
	s = binary.LittleEndian.AppendUint32(s, crc32.ChecksumIEEE(f))
	s = append(s, f...)
	return append(s, 'Y', 'Z')
}

func varint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestHostileIndex(t *testing.T) {
	cases := []struct {
		name  string
		index []byte
		want  error
	}{
		{"2^60 records", append([]byte{0}, varint(1<<60)...), ErrFormat},
		{"many records", append(append([]byte{0}, varint(100)...), bytes.Repeat([]byte{5, 1}, 100)...), ErrFormat},
		{"huge uncompressed", append(append([]byte{0, 1}, varint(16)...), varint(1<<62)...), ErrUnitTooLarge},
		{"nine-byte varint", append([]byte{0}, bytes.Repeat([]byte{0xff}, 10)...), ErrFormat},
		{"superfluous zero", []byte{0, 0x80, 0}, ErrFormat},
		{"no indicator", []byte{1, 0}, ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := mkStream(1, make([]byte, 16), c.index)
			_, err := Open(bytes.NewReader(file), int64(len(file)), Options{})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			t.Log(err)
		})
	}
	// An empty stream is valid and empty.
	file := mkStream(4, nil, []byte{0, 0})
	if x, err := Open(bytes.NewReader(file), int64(len(file)), Options{}); err != nil || x.Size() != 0 {
		t.Fatalf("empty stream: %v", err)
	}
	// A reserved check type.
	file = mkStream(2, nil, []byte{0, 0})
	if _, err := Open(bytes.NewReader(file), int64(len(file)), Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("check type 2: %v", err)
	}
}

// refXZ decodes with the reference decoder of github.com/ulikunitz/xz.
func refXZ(file []byte) ([]byte, error) {
	r, err := xz.NewReader(bytes.NewReader(file))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, 3<<20))
}

func FuzzOpen(f *testing.F) {
	data := testData(40<<10, 11)
	for _, args := range [][]string{{"-0"}, {"--block-size=8KiB", "-1"}, {"--check=sha256", "-0"}, {"--check=none", "--block-size=16KiB", "-0"}} {
		f.Add(xzFile(f, data, args...))
	}
	f.Add(xzFile(f, nil))
	f.Add(mkStream(1, nil, []byte{0, 0}))
	f.Fuzz(func(t *testing.T, file []byte) {
		got, err := readThrough(t, file)
		if err != nil || got == nil {
			return
		}
		// What is read whole must be what the reference decodes, when
		// it decodes it.
		if want, rerr := refXZ(file); rerr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%d bytes read differ from the reference's %d", len(got), len(want))
		}
	})
}

// strictReaderAt fails the test on a read outside the file.
type strictReaderAt struct {
	t testing.TB
	b []byte
}

func (s *strictReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(s.b)) || int64(len(p)) > int64(len(s.b))-off {
		s.t.Errorf("read of %d bytes at offset %d, outside the %d-byte file", len(p), off, len(s.b))
		return 0, io.EOF
	}
	return copy(p, s.b[off:]), nil
}
