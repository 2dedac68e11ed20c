package ova

import (
	"archive/zip"
	"bytes"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// BenchmarkOpenZip10k indexes a zip of 10,000 small entries: the
// directory and 10,000 local headers.
func BenchmarkOpenZip10k(b *testing.B) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := range 10000 {
		fw, _ := w.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("dir%03d/file%05d.txt", i/100, i), Method: zip.Store})
		fw.Write([]byte("x"))
	}
	w.Close()
	r := bytes.NewReader(buf.Bytes())
	b.ResetTimer()
	for range b.N {
		a, err := OpenZip(r, int64(buf.Len()), ZipOptions{})
		if err != nil || len(a.Files()) != 10000 {
			b.Fatal(err)
		}
	}
}

// diskLike is data that compresses like a disk image: runs of zeros,
// text, and incompressible blocks.
func diskLike(n int) []byte {
	rng := rand.New(rand.NewSource(1))
	out := make([]byte, 0, n)
	blk := make([]byte, 4096)
	for len(out) < n {
		switch rng.Intn(4) {
		case 0:
			clear(blk)
		case 1:
			rng.Read(blk)
		default:
			for i := range blk {
				blk[i] = "appliance disk block text "[(i+rng.Intn(3))%26]
			}
		}
		out = append(out, blk...)
	}
	return out[:n]
}

// BenchmarkZipRandomRead4K reads 4 KiB at random offsets of a 100 MiB
// deflated entry, after its index is built (the build time is logged).
func BenchmarkZipRandomRead4K(b *testing.B) {
	data := diskLike(100 << 20)
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	fw, _ := w.CreateHeader(&zip.FileHeader{Name: "disk.vmdk", Method: zip.Deflate})
	fw.Write(data)
	w.Close()
	for _, span := range []int64{4 << 20, 0, 1 << 20} {
		b.Run(fmt.Sprintf("span=%d", span), func(b *testing.B) {
			a, err := OpenZip(bytes.NewReader(buf.Bytes()), int64(buf.Len()), ZipOptions{Span: span})
			if err != nil {
				b.Fatal(err)
			}
			m, _ := a.Lookup("disk.vmdk")
			t0 := time.Now()
			if err := m.Prepare(b.Context(), nil); err != nil {
				b.Fatal(err)
			}
			b.Logf("index of %d MiB (%d MiB compressed) built in %v", len(data)>>20, buf.Len()>>20, time.Since(t0))
			rng := rand.New(rand.NewSource(2))
			p := make([]byte, 4096)
			b.ResetTimer()
			for range b.N {
				off := rng.Int63n(int64(len(data) - len(p)))
				if _, err := m.ReadAt(p, off); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}
