package zstdindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var sentinels = []error{ErrNotZstd, ErrFormat, ErrTruncated, ErrCorrupt, ErrChecksum, ErrUnsupported, ErrWindowTooLarge, ErrUnitTooLarge, ErrTooManyUnits}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fuzzOptions keep a fuzzed input's cost small.
var fuzzOptions = Options{MaxUnit: 4 << 20, MaxWindow: 1 << 20, MaxUnits: 1000, Decoders: 2}

// readThrough opens file and reads it all, second half first, returning
// the bytes or the first error. Errors must wrap a sentinel.
func readThrough(t testing.TB, file []byte) ([]byte, error) {
	z, err := Open(&strictReaderAt{t: t, b: file}, int64(len(file)), fuzzOptions)
	if err != nil {
		if !isSentinel(err) {
			t.Fatalf("Open: error without a sentinel: %v", err)
		}
		return nil, err
	}
	if z.Size() > 2<<20 {
		return nil, nil
	}
	out := make([]byte, z.Size())
	half := z.Size() / 2
	for _, r := range [][2]int64{{half, z.Size()}, {0, half}} {
		for off := r[0]; off < r[1]; off += 100 << 10 {
			end := min(off+100<<10, r[1])
			n, err := z.ReadAt(out[off:end], off)
			if err != nil && !(err == io.EOF && off+int64(n) == z.Size()) {
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
	data := testData(64<<10, 10)
	var parts [][]byte
	for i := 0; i < 4; i++ {
		parts = append(parts, cli(t, data[i*16<<10:(i+1)*16<<10], i%2 == 1, "zstd", "-1"))
	}
	plain := bytes.Join(parts, skippable(2, 3))
	seek := seekable(t, data, 16<<10, true)
	for name, file := range map[string][]byte{"frames": plain, "seekable": seek} {
		t.Run(name, func(t *testing.T) {
			if got, err := readThrough(t, file); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("intact file: %v", err)
			}
			for n := 0; n < len(file); n++ {
				if n > 64 && n < len(file)-128 && n%61 != 0 || n%sparse != 0 {
					continue
				}
				if got, err := readThrough(t, file[:n]); err == nil && !bytes.Equal(got, data[:len(got)]) {
					t.Fatalf("prefix of %d bytes: wrong bytes without an error", n)
				}
				readThrough(t, file[n:])
			}
			for i := range file {
				if i > 64 && i < len(file)-128 && i%23 != 0 || i%sparse != 0 {
					continue
				}
				for _, bit := range []int{i % 8, (i + 3) % 8} {
					bad := bytes.Clone(file)
					bad[i] ^= 1 << bit
					readThrough(t, bad)
				}
			}
		})
	}
}

func TestHostileSeekTable(t *testing.T) {
	data := testData(64<<10, 12)
	good := seekable(t, data, 16<<10, false)
	footer := len(good) - seekFooterSize
	cases := []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"2^32-1 frames", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[footer:], 1<<32-1); return b }, ErrTooManyUnits},
		{"more frames than the file holds", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[footer:], 900); return b }, ErrFormat},
		{"reserved descriptor bits", func(b []byte) []byte { b[footer+4] |= 0x04; return b }, ErrFormat},
		{"compressed sizes do not tile", func(b []byte) []byte {
			e := footer - 4*8
			binary.LittleEndian.PutUint32(b[e:], binary.LittleEndian.Uint32(b[e:])+1)
			return b
		}, ErrFormat},
		{"huge decompressed size", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[footer-4*8+4:], 1<<31)
			return b
		}, ErrUnitTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := c.edit(bytes.Clone(good))
			_, err := Open(bytes.NewReader(file), int64(len(file)), Options{MaxUnits: 1000})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// A dictionary frame is refused.
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderDict(dictFor(t)))
	file := enc.EncodeAll(data[:1000], nil)
	if _, err := Open(bytes.NewReader(file), int64(len(file)), Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("dictionary frame: %v", err)
	}
}

// dictFor builds a zstd dictionary from sample text.
func dictFor(t *testing.T) []byte {
	var samples [][]byte
	for i := range 50 {
		samples = append(samples, testData(2000, uint64(100+i)))
	}
	d, err := zstd.BuildDict(zstd.BuildDictOptions{ID: 1234, Contents: samples, History: bytes.Join(samples, nil)[:8192]})
	if err != nil {
		t.Skip("cannot build a dictionary:", err)
	}
	return d
}

// refZstd decodes with klauspost/compress's stream decoder.
func refZstd(file []byte) ([]byte, error) {
	d, err := zstd.NewReader(bytes.NewReader(file), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<20))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return io.ReadAll(io.LimitReader(d, 3<<20))
}

func FuzzOpen(f *testing.F) {
	data := testData(40<<10, 11)
	f.Add(cli(f, data, false, "zstd", "-1"))
	f.Add(cli(f, data, true, "zstd", "-1", "--no-check"))
	f.Add(append(skippable(0, 4), cli(f, data[:1000], false, "zstd", "-19")...))
	f.Add(seekable(f, data, 8<<10, false))
	f.Add(seekable(f, data, 16<<10, true))
	f.Fuzz(func(t *testing.T, file []byte) {
		got, err := readThrough(t, file)
		if err != nil || got == nil {
			return
		}
		if want, rerr := refZstd(file); rerr == nil && !bytes.Equal(got, want) {
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
