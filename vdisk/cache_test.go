package vdisk

import (
	"errors"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// gateDecoder decodes a unit as bytes of its ID, after waiting for gate
// when it is set, and fails with err when that is set.
type gateDecoder struct {
	gate chan struct{}
	err  error
}

func (d *gateDecoder) DecodeUnit(dst []byte, u blockmap.Unit) error {
	if d.gate != nil {
		<-d.gate
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
					e, err := c.acquire(u)
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
						joined <- c.decodeInto(u, dst)
						return
					}
					e, err := c.acquire(u)
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

// BenchmarkCacheHit measures the path a read of a cached unit takes.
func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(1<<20, 1)
	u := blockmap.Unit{Dec: &gateDecoder{}, ID: 1, Size: 4096}
	dst := make([]byte, u.Size)
	e, err := c.acquire(u)
	if err != nil {
		b.Fatal(err)
	}
	c.release(e)
	b.Run("acquire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, _ := c.acquire(u)
			c.release(e)
		}
	})
	b.Run("decodeInto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.decodeInto(u, dst)
		}
	})
}
