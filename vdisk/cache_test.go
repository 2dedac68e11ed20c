package vdisk

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// gateDecoder decodes a unit as bytes of its ID, after waiting for gate
// (or for ctx to end, as a decoder whose source waits does) when it is
// set, and fails with err when that is set. Each decode that starts sends
// on started, when that is set.
type gateDecoder struct {
	gate    chan struct{}
	err     error
	started chan struct{}
}

func (d *gateDecoder) DecodeUnit(ctx context.Context, dst []byte, u blockmap.Unit) error {
	if d.started != nil {
		d.started <- struct{}{}
	}
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if d.err != nil {
		return d.err
	}
	for i := range dst {
		dst[i] = byte(u.ID)
	}
	return nil
}

// waitRefs waits until the entry for u is pinned by n readers.
func waitRefs(t *testing.T, c *Cache, u blockmap.Unit, n int32) *unitEntry {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		c.mu.Lock()
		e := c.entries[unitKey{u.Dec, u.ID}]
		ok := e != nil && e.refs == n
		c.mu.Unlock()
		if ok {
			return e
		}
	}
	t.Fatalf("the entry never had %d readers", n)
	return nil
}

// Both ways of reading a unit join a decode in flight: they get its bytes
// and count a hit, or get its error, count nothing, and unpin the entry.
func TestCacheJoinsDecodeInFlight(t *testing.T) {
	for _, fails := range []bool{false, true} {
		for _, via := range []string{"acquire", "decodeInto"} {
			name := via
			if fails {
				name += " failed"
			}
			t.Run(name, func(t *testing.T) {
				dec := &gateDecoder{gate: make(chan struct{})}
				if fails {
					dec.err = errors.New("grain 7 is damaged")
				}
				c := NewCache(1<<20, 2)
				u := blockmap.Unit{Dec: dec, ID: 7, Size: 4096}
				first := make(chan error, 1)
				go func() {
					e, err := c.acquire(context.Background(), u)
					if err == nil {
						c.release(e)
					}
					first <- err
				}()
				waitRefs(t, c, u, 1)
				joined := make(chan error, 1)
				dst := make([]byte, u.Size)
				go func() {
					if via == "decodeInto" {
						joined <- c.decodeInto(context.Background(), u, dst)
						return
					}
					e, err := c.acquire(context.Background(), u)
					if err == nil {
						copy(dst, e.data)
						c.release(e)
					}
					joined <- err
				}()
				e := waitRefs(t, c, u, 2)
				close(dec.gate)
				err1, err2 := <-first, <-joined
				hits, misses, decodes := c.Stats()
				if misses != 1 || decodes != 1 {
					t.Errorf("%d misses, %d decodes; want 1 and 1", misses, decodes)
				}
				if fails {
					if !errors.Is(err1, dec.err) || !errors.Is(err2, dec.err) || hits != 0 {
						t.Errorf("errors %v, %v and %d hits; want the decode's error twice and no hit", err1, err2, hits)
					}
				} else if err1 != nil || err2 != nil || dst[0] != 7 || hits != 1 {
					t.Errorf("errors %v, %v, byte %d and %d hits; want the unit and one hit", err1, err2, dst[0], hits)
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				if e.refs != 0 {
					t.Errorf("%d readers still pin the entry", e.refs)
				}
				if cached := c.entries[e.key] != nil; cached == fails {
					t.Errorf("cached %v after a decode that failed: %v", cached, fails)
				}
			})
		}
	}
}

// Close abandons the read-ahead decodes in flight, and a reader that was
// waiting for one decodes the unit itself.
func TestCacheCloseAbandonsReadAhead(t *testing.T) {
	dec := &gateDecoder{gate: make(chan struct{}), started: make(chan struct{}, 4)}
	c := NewCache(1<<20, 2)
	u := blockmap.Unit{Dec: dec, ID: 9, Size: 4096}
	c.prefetch(u)
	await(t, dec.started, "the read-ahead decode starting")
	got := make(chan error, 1)
	dst := make([]byte, u.Size)
	go func() {
		e, err := c.acquire(context.Background(), u)
		if err == nil {
			copy(dst, e.data)
			c.release(e)
		}
		got <- err
	}()
	waitRefs(t, c, u, 1)
	c.Close()
	await(t, dec.started, "the reader decoding the unit itself")
	close(dec.gate)
	if err := await(t, got, "the reader's acquire"); err != nil || dst[0] != 9 {
		t.Fatalf("acquire after the read-ahead was abandoned: %v, byte %d; want the unit", err, dst[0])
	}
}

// TestReadAheadSkipsUnitsServedWhole: a unit a reader decoded straight
// into its reply is not decoded again by read-ahead queued for it, while
// another unit queued with it is.
func TestReadAheadSkipsUnitsServedWhole(t *testing.T) {
	dec := &gateDecoder{started: make(chan struct{}, 4)}
	c := NewCache(1<<20, 1)
	defer c.Close()
	served, other := blockmap.Unit{Dec: dec, ID: 3, Size: 4096}, blockmap.Unit{Dec: dec, ID: 4, Size: 4096}
	dst := make([]byte, served.Size)
	if err := c.decodeInto(context.Background(), served, dst); err != nil || dst[0] != 3 {
		t.Fatalf("decodeInto: %v, byte %d", err, dst[0])
	}
	await(t, dec.started, "the reader's decode")
	c.prefetch(served)
	c.prefetch(other)
	await(t, dec.started, "the read-ahead decode of the other unit")
	for deadline := time.Now().Add(5 * time.Second); !c.loading(other) || !isDone(c.entryDone(other)); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the other unit was never cached")
		}
	}
	if _, _, decodes := c.Stats(); decodes != 2 {
		t.Errorf("%d decodes, want 2: the unit served whole was decoded again", decodes)
	}
	if c.loading(served) {
		t.Error("read-ahead cached the unit a reader had served whole")
	}
}

// entryDone is the done channel of u's entry, closed if there is none.
func (c *Cache) entryDone(u blockmap.Unit) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[unitKey{u.Dec, u.ID}]; e != nil {
		return e.done
	}
	done := make(chan struct{})
	close(done)
	return done
}

// BenchmarkCacheHit measures the path a read of a cached unit takes.
func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(1<<20, 1)
	u := blockmap.Unit{Dec: &gateDecoder{}, ID: 1, Size: 4096}
	dst := make([]byte, u.Size)
	e, err := c.acquire(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	c.release(e)
	b.Run("acquire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, _ := c.acquire(context.Background(), u)
			c.release(e)
		}
	})
	b.Run("decodeInto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.decodeInto(context.Background(), u, dst)
		}
	})
}

// TestReadTakesCachedUnitsAsIs: a read over units of which some are
// cached copies those from the cache (whole or in part) and decodes only
// the others, and the bytes are right either way.
func TestReadTakesCachedUnitsAsIs(t *testing.T) {
	im, src, plain := streamImage(t, 2)
	close(src.gate)
	read := func(off int64, n int) {
		t.Helper()
		p := make([]byte, n)
		if k, err := im.ReadAt(p, off); err != nil || k != n {
			t.Fatalf("read %d at %d: %d bytes, %v", n, off, k, err)
		}
		if !bytes.Equal(p, plain[off:off+int64(n)]) {
			t.Fatalf("read %d at %d: wrong bytes", n, off)
		}
	}
	// The tails of grains 0 and 2: too far in to be served from a decode
	// of the head, so both are decoded whole into the cache.
	read(60000, 4096)
	read(2<<16+60000, 4096)
	hits, _, decodes := im.cache.Stats()
	if decodes != 2 {
		t.Fatalf("%d decodes caching two grains, want 2", decodes)
	}
	// All four grains, whole: 0 and 2 come from the cache, 1 and 3 are
	// decoded straight into the read's buffer.
	read(0, 4<<16)
	h, _, d := im.cache.Stats()
	if d != decodes+2 || h != hits+2 {
		t.Errorf("whole read: %d decodes and %d hits more, want 2 and 2", d-decodes, h-hits)
	}
	// Parts of three grains, one of them cached.
	read(60000, 2<<16)
}
