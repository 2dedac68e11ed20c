package unitread

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

func byteAt(o int64) byte { return byte(o*7 + o>>9) }

// fake decodes units whose bytes are byteAt of their absolute offset,
// counting what it decodes; bad units fail at their end, long ones yield
// a byte too many.
type fake struct {
	units   []Unit
	decoded atomic.Int64
	opens   atomic.Int64
	bad     map[int]bool
	long    map[int]bool
}

var errBad = errors.New("check failed")
var errCorrupt = errors.New("corrupt")

type fakeDec struct {
	f    *fake
	i    int
	pos  int64 // unit-relative
	stop int64
}

func (f *fake) open(i int, old io.Reader) (io.Reader, error) {
	f.opens.Add(1)
	stop := f.units[i].Len
	if f.long[i] {
		stop++
	}
	return &fakeDec{f: f, i: i, stop: stop}, nil
}

func (d *fakeDec) Read(p []byte) (int, error) {
	u := d.f.units[d.i]
	if d.pos >= d.stop {
		if d.f.bad[d.i] {
			return 0, errBad
		}
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), d.stop-d.pos, 100<<10))
	for k := range n {
		p[k] = byteAt(u.Off + d.pos + int64(k))
	}
	d.pos += int64(n)
	d.f.decoded.Add(int64(n))
	return n, nil
}

func newFake(sizes ...int64) *fake {
	f := &fake{bad: map[int]bool{}, long: map[int]bool{}}
	var off int64
	for _, s := range sizes {
		f.units = append(f.units, Unit{Off: off, Len: s})
		off += s
	}
	return f
}

func (f *fake) reader(decoders, cache int) *Reader {
	return New(Config{Name: "test", Units: f.units, Open: f.open, Corrupt: errCorrupt, Decoders: decoders, CacheBytes: cache})
}

func check(t *testing.T, r io.ReaderAt, p []byte, off int64) {
	t.Helper()
	n, err := r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		t.Fatalf("ReadAt(%d, %d): %v", len(p), off, err)
	}
	for k := range n {
		if p[k] != byteAt(off+int64(k)) {
			t.Fatalf("ReadAt(%d, %d): wrong byte at %d", len(p), off, off+int64(k))
		}
	}
}

func TestSequentialDecodesOnce(t *testing.T) {
	f := newFake(3<<20, 1, 5<<20+17, 100, 2<<20)
	r := f.reader(4, 0)
	p := make([]byte, 128<<10+3)
	for off := int64(0); off < r.Size(); off += int64(len(p)) {
		check(t, r, p, off)
	}
	if f.decoded.Load() != r.Size() || f.opens.Load() != int64(len(f.units)) {
		t.Fatalf("decoded %d bytes in %d opens for %d bytes in %d units", f.decoded.Load(), f.opens.Load(), r.Size(), len(f.units))
	}
}

func TestInterleavedSequential(t *testing.T) {
	f := newFake(8<<20, 8<<20)
	r := f.reader(4, 0)
	p := make([]byte, 64<<10)
	// Three readers, far apart, taking turns; and small backward steps.
	for off := int64(0); off+12<<20 < r.Size(); off += int64(len(p)) {
		for _, base := range []int64{0, 5 << 20, 11 << 20} {
			check(t, r, p, base+off)
			check(t, r, p[:100], base+off+1000)
		}
	}
	// Unit 0 twice (to 4 and to 8 MiB), unit 1 to 1 MiB and to 7 MiB:
	// what three readers starting apart need, not a restart per read.
	if f.decoded.Load() > 21<<20 || f.opens.Load() > 4 {
		t.Fatalf("decoded %d bytes in %d opens", f.decoded.Load(), f.opens.Load())
	}
}

func TestCache(t *testing.T) {
	f := newFake(6<<20, 3<<20)
	r := f.reader(1, 16<<20)
	p := make([]byte, 1<<20)
	for off := int64(0); off < r.Size(); off += 1 << 20 {
		check(t, r, p, off)
	}
	p = p[:4096]
	before := f.decoded.Load()
	// Re-reads behind the only decoder come from the cache.
	for off := int64(0); off < 8<<20; off += 1 << 20 {
		check(t, r, p, off+100)
	}
	if f.decoded.Load() != before {
		t.Fatalf("re-reads decoded %d bytes", f.decoded.Load()-before)
	}
	// Without a cache they decode again.
	g := newFake(6<<20, 3<<20)
	r = g.reader(1, 0)
	check(t, r, p, 5<<20)
	check(t, r, p, 1<<20)
	if g.decoded.Load() < 6<<20 {
		t.Fatalf("decoded %d bytes", g.decoded.Load())
	}
}

func TestErrorsStick(t *testing.T) {
	f := newFake(600<<10, 600<<10, 600<<10)
	f.bad[1] = true
	f.long[2] = true
	for _, cache := range []int{0, 8 << 20} {
		r := f.reader(2, cache)
		p := make([]byte, 64<<10)
		check(t, r, p, 0)
		for try := 0; try < 2; try++ {
			_, err := r.ReadAt(p, 1200<<10-1000)
			if !errors.Is(err, errBad) {
				t.Fatalf("try %d: the failing end of unit 1: %v", try, err)
			}
			_, err = r.ReadAt(p, 1800<<10-1000)
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("try %d: the overlong unit 2: %v", try, err)
			}
		}
		// The start of the failing unit still reads: its check is not
		// reached.
		check(t, r, p, 600<<10)
	}
}

func TestConcurrent(t *testing.T) {
	f := newFake(2<<20, 1<<20, 3<<20, 700<<10)
	r := f.reader(3, 2<<20)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			p := make([]byte, 200<<10)
			off := rng.Int64N(r.Size())
			for range 30 {
				if g%2 == 0 {
					off = rng.Int64N(r.Size())
				}
				n, err := r.ReadAt(p[:rng.IntN(len(p))+1], off)
				if err != nil && err != io.EOF {
					t.Error(err)
					return
				}
				for k := range n {
					if p[k] != byteAt(off+int64(k)) {
						t.Errorf("wrong byte at %d", off+int64(k))
						return
					}
				}
				off = (off + int64(n)) % r.Size()
			}
		}()
	}
	wg.Wait()
}

func TestEdges(t *testing.T) {
	r := newFake().reader(1, 0)
	if n, err := r.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
		t.Fatalf("empty: %d, %v", n, err)
	}
	r = newFake(10, 20).reader(1, 0)
	p := make([]byte, 40)
	if n, err := r.ReadAt(p, 5); n != 25 || err != io.EOF || !bytes.Equal(p[:3], []byte{byteAt(5), byteAt(6), byteAt(7)}) {
		t.Fatalf("short read: %d, %v", n, err)
	}
	if _, err := r.ReadAt(p, -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	if n, err := r.ReadAt(p[:0], 3); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
}
