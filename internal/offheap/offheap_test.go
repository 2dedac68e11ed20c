package offheap

import (
	"sync"
	"testing"
)

func TestClassSizes(t *testing.T) {
	for _, c := range []struct{ n, size int }{{1, 4096}, {4096, 4096}, {4097, 8192}, {65536, 65536}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20}} {
		b := Get(c.n)
		if len(b) != c.n || cap(b) != c.size {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", c.n, len(b), cap(b), c.n, c.size)
		}
		Put(b)
	}
}

// A buffer put back is handed out again, with what it held: the class
// reuses memory instead of mapping more.
func TestReuse(t *testing.T) {
	c := ClassOf(64 << 10)
	b := c.Get()
	b[0], b[len(b)-1] = 7, 9
	before := Mapped()
	c.Put(b)
	var again []byte
	for range slabSize / c.Size() * 2 { // past any buffers left from the slab
		again = c.Get()
		if &again[0] == &b[0] {
			break
		}
		defer c.Put(again)
	}
	if &again[0] != &b[0] || again[0] != 7 || again[len(again)-1] != 9 {
		t.Fatal("the buffer put back was not handed out again")
	}
	c.Put(again)
	if Mapped() > before+slabSize {
		t.Errorf("mapped %d more bytes to hand out buffers that were free", Mapped()-before)
	}
}

// Buffers handed out at once never overlap, and the memory mapped stays
// within what was in use at once, rounded up to slabs.
func TestConcurrentBuffersAreDistinct(t *testing.T) {
	c := ClassOf(16 << 10)
	const workers, rounds = 8, 200
	before := Mapped()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				b := c.Get()
				for i := range b {
					b[i] = byte(w)
				}
				for i := range b {
					if b[i] != byte(w) {
						t.Errorf("worker %d round %d: byte %d was overwritten by another holder", w, r, i)
						return
					}
				}
				c.Put(b)
			}
		}()
	}
	wg.Wait()
	if grew := Mapped() - before; grew > int64(workers*c.Size()+slabSize) {
		t.Errorf("mapped %d bytes for %d buffers of %d in use at once", grew, workers, c.Size())
	}
}

// A buffer of the wrong size is not taken into a class.
func TestPutForeignBuffer(t *testing.T) {
	c := ClassOf(8192)
	c.Put(make([]byte, 100))
	if b := c.Get(); cap(b) != 8192 {
		t.Fatalf("Get after a foreign Put: cap %d", cap(b))
	}
}
