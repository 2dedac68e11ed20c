package vdisk

import (
	"bytes"
	"testing"
)

// FuzzOpen detects and opens arbitrary bytes as a disk image, and reads
// through the shared read path at a few offsets: whatever the format
// packages accept, the engine must not panic, hang, or read outside the
// image.
func FuzzOpen(f *testing.F) {
	// The format packages fuzz their parsers from real images; here the
	// seeds are just each format's magic, enough to reach every Open.
	f.Add([]byte("KDMV"))
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"))
	f.Add(append([]byte("vhdxfile"), make([]byte, 1024)...))
	f.Add(append(make([]byte, 512), []byte("conectix")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &boundedReader{data: data, t: t}
		im, err := Open(r, int64(len(data)), Options{Name: "fuzz", Cache: NewCache(1<<20, 2), Raw: true})
		if err != nil {
			return
		}
		buf := make([]byte, 70000)
		size := im.Size()
		for _, off := range []int64{0, size / 3, size / 2, size - 1, size - 70000} {
			if off < 0 || off >= size {
				continue
			}
			im.ReadAt(buf, off)
			im.Extent(off)
		}
	})
}

// boundedReader fails the test on any read outside the image.
type boundedReader struct {
	data []byte
	t    *testing.T
}

func (b *boundedReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b.data)) {
		b.t.Fatalf("read at %d, outside the %d-byte image", off, len(b.data))
	}
	return bytes.NewReader(b.data).ReadAt(p, off)
}
