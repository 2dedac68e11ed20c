package gzindex

import (
	"bytes"
	"compress/flate"
	"math"
	"os"
	"testing"
)

// inflateAll decodes one raw deflate stream with the package's inflater.
func inflateAll(data []byte) ([]byte, error) {
	f := newInflater(64<<10+outSlack, 4096)
	f.src.reset(bytesAt(data), int64(len(data)))
	f.startStream()
	var res []byte
	for f.state != stDone {
		if len(f.out)-f.op < outSlack+1024 {
			f.slide()
		}
		before := f.op
		err := f.fill(len(f.out)-outSlack, math.MaxInt64)
		res = append(res, f.out[before:f.op]...)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func TestInflateQuick(t *testing.T) {
	data, err := os.ReadFile("/tmp/gzbench/corpus.bin")
	if err != nil {
		t.Skip("no corpus")
	}
	data = data[:8<<20]
	for _, lvl := range []int{0, 1, 6, 9, -2} {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, lvl)
		w.Write(data)
		w.Close()
		got, err := inflateAll(buf.Bytes())
		if err != nil {
			t.Fatal(lvl, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal(lvl, "mismatch", len(got))
		}
	}
}

func BenchmarkInflateMine(b *testing.B) {
	d, err := os.ReadFile("/tmp/gzbench/corpus.gz")
	if err != nil {
		b.Skip("no corpus")
	}
	d = d[21:]
	f := newInflater(512<<10, 128<<10)
	b.SetBytes(134217728)
	for i := 0; i < b.N; i++ {
		f.op = 0
		f.src.reset(bytesAt(d), int64(len(d)))
		f.startStream()
		total := 0
		for f.state != stDone {
			if len(f.out)-f.op < outSlack+1024 {
				f.slide()
			}
			before := f.op
			if err := f.fill(len(f.out)-outSlack, math.MaxInt64); err != nil {
				b.Fatal(err)
			}
			total += f.op - before
		}
		if total != 134217728 {
			b.Fatal(total)
		}
	}
}
