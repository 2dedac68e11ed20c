package gzindex

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
)

// atomicCounter counts the compressed bytes a Reader reads, from any
// number of goroutines.
type atomicCounter struct {
	r     io.ReaderAt
	bytes atomic.Int64
}

func (c *atomicCounter) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.bytes.Add(int64(n))
	return n, err
}

// TestReaderLarge reads a 64 MiB stream of real binaries at random
// offsets and then sequentially, counting the compressed bytes read: a
// random read may read about a span of them, a sequential pass about the
// stream once.
func TestReaderLarge(t *testing.T) {
	data := realBytes(t, scaled(64<<20))
	gz := gzipKlaus(t, data, 1)
	ix := buildIndex(t, gz, Options{Span: 1 << 20})
	cr := &atomicCounter{r: bytes.NewReader(gz)}
	rd := NewReader(cr, int64(len(gz)), ix)

	rng := rand.New(rand.NewSource(64))
	reads := 150
	if raceEnabled {
		reads = 40
	}
	for range reads {
		off := rng.Int63n(int64(len(data)))
		p := make([]byte, 1+rng.Intn(64<<10))
		before := cr.bytes.Load()
		n, err := rd.ReadAt(p, off)
		if want := min(int64(len(p)), int64(len(data))-off); int64(n) != want || !bytes.Equal(p[:n], data[off:off+want]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", len(p), off, n, err)
		}
		if read, limit := cr.bytes.Load()-before, ix.Span()+int64(len(p))+3*cursorIn; read > limit {
			t.Fatalf("ReadAt(%d bytes at %d) read %d compressed bytes, more than span %d allows", len(p), off, read, ix.Span())
		}
	}

	before := cr.bytes.Load()
	p := make([]byte, 128<<10)
	for off := int64(0); off < int64(len(data)); off += int64(len(p)) {
		n, err := rd.ReadAt(p, off)
		if want := min(int64(len(p)), int64(len(data))-off); int64(n) != want || !bytes.Equal(p[:n], data[off:off+want]) {
			t.Fatalf("sequential ReadAt at %d = %d, %v", off, n, err)
		}
	}
	if read := cr.bytes.Load() - before; read > int64(len(gz))+int64(len(gz))/50+4*cursorIn {
		t.Fatalf("a sequential pass read %d compressed bytes of a %d-byte stream: more than one pass", read, len(gz))
	}
}

// TestReaderConcurrent runs interleaved sequential readers, readers of the
// same region and random readers at once, more of them than the Reader
// keeps decoders for.
func TestReaderConcurrent(t *testing.T) {
	data := realBytes(t, 8<<20)
	gz := gzipKlaus(t, data, 1)
	ix := buildIndex(t, gz, Options{Span: 256 << 10})
	cr := &atomicCounter{r: bytes.NewReader(gz)}
	rd := NewReader(cr, int64(len(gz)), ix)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	check := func(p []byte, off int64) error {
		n, err := rd.ReadAt(p, off)
		want := min(int64(len(p)), int64(len(data))-off)
		if int64(n) != want || (err != nil && int64(n) == int64(len(p))) || !bytes.Equal(p[:n], data[off:off+want]) {
			return fmt.Errorf("ReadAt(%d bytes at %d) = %d, %v", len(p), off, n, err)
		}
		return nil
	}
	q := int64(len(data)) / 4
	for g := range 6 {
		wg.Go(func() {
			// Two readers go through the first quarter together.
			from := int64(g%4) * q
			p := make([]byte, 48<<10)
			for off := from; off < from+q; off += int64(len(p)) {
				if err := check(p, off); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewSource(int64(g)))
			for range 20 {
				if err := check(make([]byte, rng.Intn(20<<10)), rng.Int63n(int64(len(data)))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d compressed bytes read for a %d-byte stream", cr.bytes.Load(), len(gz))
}

func TestReaderEdges(t *testing.T) {
	data := textBytes(100<<10, 1)
	gz := gzipStd(t, data, 6)
	rd := NewReader(bytes.NewReader(gz), int64(len(gz)), buildIndex(t, gz, Options{}))
	cases := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantErr error
	}{
		{"negative offset", -1, 10, 0, errNegative},
		{"at the end", int64(len(data)), 10, 0, io.EOF},
		{"past the end", int64(len(data)) + 1000, 10, 0, io.EOF},
		{"empty at the end", int64(len(data)), 0, 0, io.EOF},
		{"empty inside", 5, 0, 0, nil},
		{"straddling the end", int64(len(data)) - 4, 10, 4, io.EOF},
		{"exactly to the end", int64(len(data)) - 10, 10, 10, nil},
		{"all of it and more", 0, len(data) + 1, len(data), io.EOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := make([]byte, c.n)
			n, err := rd.ReadAt(p, c.off)
			if n != c.wantN {
				t.Fatalf("n = %d, want %d", n, c.wantN)
			}
			switch {
			case c.wantErr == errNegative:
				if err == nil {
					t.Fatal("no error for a negative offset")
				}
			case !errors.Is(err, c.wantErr) && err != c.wantErr:
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if n > 0 && !bytes.Equal(p[:n], data[c.off:c.off+int64(n)]) {
				t.Fatal("wrong bytes")
			}
		})
	}

	empty := gzipStd(t, nil, 6)
	erd := NewReader(bytes.NewReader(empty), int64(len(empty)), buildIndex(t, empty, Options{}))
	if n, err := erd.ReadAt(make([]byte, 5), 0); n != 0 || err != io.EOF || erd.Size() != 0 {
		t.Fatalf("empty stream: %d, %v, size %d", n, err, erd.Size())
	}
}

// errNegative marks the case where any error will do.
var errNegative = errors.New("any error")

// TestReaderChangedStream serves an index with a stream it does not
// describe: reads must fail or return data, never panic, and Matches must
// tell the streams apart.
func TestReaderChangedStream(t *testing.T) {
	data := realBytes(t, 2<<20)
	gz := gzipStd(t, data, 6)
	ix := buildIndex(t, gz, Options{Span: MinSpan})
	other := randomBytes(len(gz), 77)
	if ix.Matches(bytes.NewReader(other), int64(len(other))) {
		t.Fatal("Matches accepts random bytes")
	}
	rd := NewReader(bytes.NewReader(other), int64(len(other)), ix)
	failed := 0
	rng := rand.New(rand.NewSource(3))
	for range 100 {
		if _, err := rd.ReadAt(make([]byte, 64<<10), rng.Int63n(int64(len(data)))); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no read of random bytes failed")
	}

	// The stream cut short: reads near its end fail with ErrTruncated.
	short := NewReader(bytes.NewReader(gz[:len(gz)/2]), int64(len(gz)/2), ix)
	if _, err := short.ReadAt(make([]byte, 100), int64(len(data))-100); !errors.Is(err, ErrTruncated) {
		t.Fatalf("read past a truncation: %v, want ErrTruncated", err)
	}
	if ix.Matches(bytes.NewReader(gz[:len(gz)/2]), int64(len(gz)/2)) {
		t.Fatal("Matches accepts a truncated stream")
	}
}
