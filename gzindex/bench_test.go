package gzindex

import (
	"bytes"
	stdflate "compress/flate"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"math"
	"math/rand"
	"sync"
	"testing"

	kflate "github.com/klauspost/compress/flate"
	kgzip "github.com/klauspost/compress/gzip"
)

// benchSize is the benchmarks' stream: 256 MiB of real binaries. A random
// read's cost depends on the span, not on the stream's size, so a larger
// stream would only take longer to prepare.
const benchSize = 256 << 20

var (
	benchOnce     sync.Once
	benchData     []byte
	benchGz       []byte
	benchIndexes  = map[int64]*Index{}
	benchIndexMu  sync.Mutex
	benchPrepared bool
)

func benchStream(b *testing.B) ([]byte, []byte) {
	b.Helper()
	benchOnce.Do(func() {
		benchData = realBytes(b, benchSize)
		benchGz = gzipKlaus(b, benchData, 6)
		benchPrepared = true
	})
	if !benchPrepared {
		b.Skip("the benchmark stream could not be prepared (see the first benchmark's log)")
	}
	return benchData, benchGz
}

func benchIndex(b *testing.B, span int64) *Index {
	_, gz := benchStream(b)
	benchIndexMu.Lock()
	defer benchIndexMu.Unlock()
	if ix, ok := benchIndexes[span]; ok {
		return ix
	}
	ix, err := Build(bytes.NewReader(gz), int64(len(gz)), span, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchIndexes[span] = ix
	return ix
}

// BenchmarkRandomRead4K reads 4 KiB at uniformly random offsets: each read
// restarts from a checkpoint and decodes half a span on average.
func BenchmarkRandomRead4K(b *testing.B) {
	for _, span := range []int64{1 << 20, 2 << 20, 4 << 20} {
		b.Run(sizeName(span), func(b *testing.B) {
			data, gz := benchStream(b)
			rd := NewReader(bytes.NewReader(gz), int64(len(gz)), benchIndex(b, span))
			rng := rand.New(rand.NewSource(1))
			p := make([]byte, 4096)
			for b.Loop() {
				off := rng.Int63n(int64(len(data) - len(p)))
				if _, err := rd.ReadAt(p, off); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}

func sizeName(n int64) string {
	return fmt.Sprintf("span%dMiB", n>>20)
}

// BenchmarkSequential reads the whole stream in 128 KiB reads through a
// Reader, against plain sequential decompression.
func BenchmarkSequential(b *testing.B) {
	b.Run("gzindex", func(b *testing.B) {
		data, gz := benchStream(b)
		ix := benchIndex(b, DefaultSpan)
		p := make([]byte, 128<<10)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			rd := NewReader(bytes.NewReader(gz), int64(len(gz)), ix)
			for off := int64(0); off < int64(len(data)); off += int64(len(p)) {
				if _, err := rd.ReadAt(p, off); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("compress-gzip", func(b *testing.B) {
		data, gz := benchStream(b)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			r, err := stdgzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("klauspost-gzip", func(b *testing.B) {
		data, gz := benchStream(b)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			r, err := kgzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBuild measures indexing: one decoding pass, CRC-32 and window
// compression.
func BenchmarkBuild(b *testing.B) {
	data, gz := benchStream(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Build(bytes.NewReader(gz), int64(len(gz)), 0, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInflate compares the raw deflate decoders on the same data:
// the measurement behind using this package's decoder for everything.
func BenchmarkInflate(b *testing.B) {
	decoders := []struct {
		name string
		new  func(r io.Reader) io.Reader
	}{
		{"compress-flate", func(r io.Reader) io.Reader { return stdflate.NewReader(r) }},
		{"klauspost-flate", func(r io.Reader) io.Reader { return kflate.NewReader(r) }},
	}
	b.Run("gzindex", func(b *testing.B) {
		data, gz := benchStream(b)
		comp := gz[10 : len(gz)-8]
		f := newInflater(cursorOut, cursorIn)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			f.op = 0
			f.src.reset(bytesAt(comp), int64(len(comp)))
			f.startStream()
			for f.state != stDone {
				if len(f.out)-outSlack-f.op < minRoom {
					f.slide()
				}
				if err := f.fill(len(f.out), math.MaxInt64); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	for _, d := range decoders {
		b.Run(d.name, func(b *testing.B) {
			data, gz := benchStream(b)
			comp := gz[10 : len(gz)-8]
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := io.Copy(io.Discard, d.new(bytes.NewReader(comp))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
