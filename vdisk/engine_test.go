package vdisk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// synth is a synthetic image: 64 KiB units, each a hole, a zero run, a
// stored unit (contiguous with its neighbours or not) or a compressed one.
// Its decoder "decompresses" by copying from a plain copy of the disk, and
// can be told to fail, to panic or to be slow.
type synth struct {
	unit   int64
	size   int64
	kinds  []blockmap.Kind
	phys   []int64 // stored units: offset in store
	store  *bytes.Reader
	plain  []byte // what the disk reads as
	dec    *synthDecoder
	mapErr atomic.Int64 // unit index+1 whose Map fails
}

type synthDecoder struct {
	s       *synth
	calls   atomic.Int64
	failAt  atomic.Int64 // unit index+1 that fails to decode
	panicAt atomic.Int64
	delay   time.Duration
}

func newSynth(units int, seed int64) *synth {
	const unit = 64 << 10
	rng := rand.New(rand.NewSource(seed))
	s := &synth{unit: unit, size: int64(units)*unit - 777, kinds: make([]blockmap.Kind, units), phys: make([]int64, units)}
	s.plain = make([]byte, s.size)
	var store []byte
	for i := range units {
		k := blockmap.Kind(rng.Intn(4))
		s.kinds[i] = k
		start, end := int64(i)*unit, min(int64(i+1)*unit, s.size)
		if k == blockmap.Stored || k == blockmap.Compressed {
			rng.Read(s.plain[start:end])
		}
		if k == blockmap.Stored {
			if rng.Intn(3) == 0 {
				store = append(store, make([]byte, 512)...) // break contiguity
			}
			s.phys[i] = int64(len(store))
			store = append(store, s.plain[start:end]...)
		}
	}
	s.store = bytes.NewReader(store)
	s.dec = &synthDecoder{s: s}
	return s
}

func (s *synth) Size() int64        { return s.size }
func (s *synth) Format() string     { return "synthetic" }
func (s *synth) Warnings() []string { return nil }

func (s *synth) Map(off int64) (blockmap.Run, error) {
	i := off / s.unit
	if s.mapErr.Load() == i+1 {
		return blockmap.Run{}, fmt.Errorf("synthetic table for unit %d is damaged: %w", i, ErrCorrupt)
	}
	start := i * s.unit
	r := blockmap.Run{Off: start, Len: min(s.unit, s.size-start), Kind: s.kinds[i]}
	switch r.Kind {
	case blockmap.Stored:
		r.Src, r.Phys = s.store, s.phys[i]
	case blockmap.Compressed:
		r.Unit = blockmap.Unit{Dec: s.dec, ID: start, Off: start, Size: int(s.unit), Phys: start}
	}
	return r, nil
}

func (d *synthDecoder) DecodeUnit(ctx context.Context, dst []byte, u blockmap.Unit) error {
	d.calls.Add(1)
	i := u.Off / d.s.unit
	if d.failAt.Load() == i+1 {
		return fmt.Errorf("unit %d does not inflate: %w", i, ErrCorrupt)
	}
	if d.panicAt.Load() == i+1 {
		panic("decoder bug")
	}
	time.Sleep(d.delay)
	n := copy(dst, d.s.plain[u.Off:min(u.Off+int64(len(dst)), d.s.size)])
	clear(dst[n:])
	return nil
}

func TestEngineMatchesReference(t *testing.T) {
	s := newSynth(300, 1)
	for _, budget := range []int64{64 << 10, 1 << 20, 64 << 20} { // 1 unit, 16 units, all
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			im := newImage(s, NewCache(budget, 4))
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewSource(int64(g)))
					for range 120 {
						off := rng.Int63n(s.size)
						n := 1 + rng.Intn(256<<10)
						if rng.Intn(4) == 0 { // straddle a unit boundary
							off = (off/s.unit+1)*s.unit - int64(rng.Intn(100)) - 1
							off = max(0, min(off, s.size-1))
						}
						got := make([]byte, n)
						k, err := im.ReadAt(got, off)
						want := make([]byte, n)
						kw, errw := blockmap.ReadAt(s, want, off)
						if k != kw || (err == nil) != (errw == nil) || !bytes.Equal(got[:k], want[:kw]) || !bytes.Equal(got[:k], s.plain[off:off+int64(k)]) {
							t.Errorf("ReadAt(%d, %d) = %d, %v; reference %d, %v", n, off, k, err, kw, errw)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestEngineBoundsAndEOF(t *testing.T) {
	s := newSynth(4, 2)
	im := newImage(s, NewCache(0, 0))
	buf := make([]byte, 1000)
	if n, err := im.ReadAt(buf, s.size-10); n != 10 || err == nil {
		t.Errorf("read across the end = %d, %v; want 10, EOF", n, err)
	}
	if n, err := im.ReadAt(buf, s.size); n != 0 || err == nil {
		t.Errorf("read at the end = %d, %v", n, err)
	}
	if _, err := im.ReadAt(buf, -1); err == nil {
		t.Error("negative offset accepted")
	}
}

func TestCacheSingleflight(t *testing.T) {
	s := newSynth(8, 3)
	for i := range s.kinds {
		s.kinds[i] = blockmap.Compressed
	}
	s.dec.delay = 20 * time.Millisecond
	im := newImage(s, NewCache(0, 2))
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 100)
			if _, err := im.ReadAt(buf, 5); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c := s.dec.calls.Load(); c != 1 {
		t.Errorf("32 concurrent readers of one unit made %d decodes, want 1 (re-reads are not a sequence to read ahead of)", c)
	}
}

func TestCacheFailuresAreNotCached(t *testing.T) {
	s := newSynth(1000, 4)
	for i := range s.kinds {
		s.kinds[i] = blockmap.Compressed
	}
	im := newImage(s, NewCache(0, 0))
	buf := make([]byte, 10)
	// Units 200 apart (12.5 MiB): no read here is sequential to another,
	// so read-ahead never decodes a unit before the test arms its fault.
	at := func(i int64) int64 { return i * 200 * s.unit }
	s.dec.failAt.Store(200 + 1)
	if _, err := im.ReadAt(buf, at(1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged unit: err = %v", err)
	}
	if _, err := im.ReadAt(buf, at(0)); err != nil {
		t.Errorf("another unit: %v", err)
	}
	s.dec.failAt.Store(0) // a transient failure: the next read retries
	if _, err := im.ReadAt(buf, at(1)); err != nil {
		t.Errorf("retry after a transient failure: %v", err)
	}
	s.dec.panicAt.Store(2*200 + 1)
	if _, err := im.ReadAt(buf, at(2)); err == nil {
		t.Error("a panicking decoder must fail the read")
	}
	s.mapErr.Store(3*200 + 1)
	if _, err := im.ReadAt(buf, at(3)+7); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a failing Map: err = %v", err)
	}
	if _, err := im.ReadAt(buf, at(4)); err != nil {
		t.Errorf("reads elsewhere still work: %v", err)
	}
}

// A reader holding a unit keeps its bytes even when the cache evicts it.
func TestCacheEvictionKeepsPinnedBuffers(t *testing.T) {
	s := newSynth(64, 5)
	for i := range s.kinds {
		s.kinds[i] = blockmap.Compressed
	}
	c := NewCache(64<<10, 2)
	u0, _ := s.Map(0)
	e, err := c.acquire(context.Background(), u0.Unit)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i < 20; i++ { // push unit 0 out
		u, _ := s.Map(i * s.unit)
		e2, err := c.acquire(context.Background(), u.Unit)
		if err != nil {
			t.Fatal(err)
		}
		c.release(e2)
	}
	if !e.evicted || !bytes.Equal(e.data, s.plain[:s.unit]) {
		t.Fatal("the pinned unit was evicted and its buffer reused")
	}
	c.release(e)
	if e.data != nil {
		t.Error("the evicted unit's buffer was not recycled after its last reader")
	}
	if c.used > c.budget {
		t.Errorf("cache holds %d bytes, budget %d", c.used, c.budget)
	}
}

func TestReadAheadDecodesAhead(t *testing.T) {
	s := newSynth(256, 6)
	for i := range s.kinds {
		s.kinds[i] = blockmap.Compressed
	}
	c := NewCache(64<<20, 2)
	im := newImage(s, c)
	buf := make([]byte, 128<<10)
	for off := int64(0); off < 2<<20; off += int64(len(buf)) {
		if _, err := im.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the idle workers finish
	c.mu.Lock()
	ahead := 0
	for k := range c.entries {
		if k.id >= 2<<20 {
			ahead++
		}
	}
	c.mu.Unlock()
	if ahead == 0 {
		t.Error("a sequential reader got nothing decoded ahead of it")
	}
	// A random reader gets no read-ahead.
	s2 := newSynth(4096, 7)
	for i := range s2.kinds {
		s2.kinds[i] = blockmap.Compressed
	}
	im2 := newImage(s2, NewCache(64<<20, 2))
	rng := rand.New(rand.NewSource(1))
	for range 20 {
		im2.ReadAt(buf[:4096], rng.Int63n(s2.size-4096))
	}
	time.Sleep(50 * time.Millisecond)
	if calls := s2.dec.calls.Load(); calls > 40 { // a read may straddle two units
		t.Errorf("20 random reads made %d decodes", calls)
	}
}

func TestExtentAndAllocated(t *testing.T) {
	s := newSynth(50, 8)
	im := newImage(s, NewCache(0, 0))
	var alloc int64
	for i, k := range s.kinds {
		if k.HasData() {
			alloc += min(s.unit, s.size-int64(i)*s.unit)
		}
	}
	if got, err := im.Allocated(); err != nil || got != alloc {
		t.Errorf("Allocated = %d, %v; want %d", got, err, alloc)
	}
	// Walking extents covers the disk, alternating data and zeros.
	var pos int64
	prev := -1
	for pos < s.size {
		e, err := im.Extent(pos)
		if err != nil || e.Off != pos || e.Len <= 0 {
			t.Fatalf("Extent(%d) = %+v, %v", pos, e, err)
		}
		if prev >= 0 && (prev == 1) == e.Data {
			t.Fatalf("two neighbouring extents of the same class at %d", pos)
		}
		for o := e.Off; o < e.Off+e.Len; o += s.unit {
			if s.kinds[o/s.unit].HasData() != e.Data {
				t.Fatalf("extent %+v misclassifies unit %d", e, o/s.unit)
			}
		}
		prev = map[bool]int{false: 0, true: 1}[e.Data]
		pos += e.Len
	}
}

// TestSeekDataHole checks SEEK_DATA and SEEK_HOLE answers at every unit
// boundary and inside units against the synthetic disk's own map.
func TestSeekDataHole(t *testing.T) {
	s := newSynth(50, 8)
	im := newImage(s, NewCache(0, 0))
	data := func(o int64) bool { return s.kinds[o/s.unit].HasData() }
	for off := int64(0); off < s.size; off += s.unit / 3 {
		wantData, wantOK := off, false
		for ; wantData < s.size; wantData = (wantData/s.unit + 1) * s.unit {
			if data(wantData) {
				wantOK = true
				break
			}
		}
		got, ok, err := im.SeekData(off)
		if err != nil || ok != wantOK || (ok && got != wantData) {
			t.Fatalf("SeekData(%d) = %d, %v, %v; want %d, %v", off, got, ok, err, wantData, wantOK)
		}
		wantHole := off
		for wantHole < s.size && data(wantHole) {
			wantHole = (wantHole/s.unit + 1) * s.unit
		}
		wantHole = min(wantHole, s.size)
		if got, err := im.SeekHole(off); err != nil || got != wantHole {
			t.Fatalf("SeekHole(%d) = %d, %v; want %d", off, got, err, wantHole)
		}
		// Bounded: the hole, or the limit when the hole lies past it.
		for _, limit := range []int64{off + 1, off + s.unit, off + 5*s.unit} {
			if got, err := im.SeekHoleBefore(off, limit); err != nil || got != min(wantHole, limit, s.size) {
				t.Fatalf("SeekHoleBefore(%d, %d) = %d, %v; want %d", off, limit, got, err, min(wantHole, limit, s.size))
			}
		}
	}
	if _, ok, _ := im.SeekData(s.size); ok {
		t.Error("SeekData at the end found data")
	}
	if got, _ := im.SeekHole(s.size); got != s.size {
		t.Errorf("SeekHole at the end = %d, want %d", got, s.size)
	}
}
