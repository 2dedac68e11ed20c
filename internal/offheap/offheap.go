// Package offheap hands out byte buffers from memory that the Go garbage
// collector neither manages nor counts, for the daemon's long-lived
// buffers: the decoded-block cache and the checked chunks.
//
// Why: the collector lets the heap grow to twice what is live before it
// collects (GOGC=100), and a 64 MiB cache held on the heap is live, so it
// alone cost 128 MiB of the daemon's resident memory; pooled buffers kept
// in sync.Pools cost twice over in the same way. Buffers from here cost
// what they hold, once, and the heap's growth is set by the small rest.
//
// A Class is a free list of buffers of one size. Memory comes from the
// kernel in slabs (anonymous mappings), is carved into buffers and is
// never given back: a class holds at most as many buffers as were ever in
// use at once, which the callers bound (the cache by its budget, the
// chunk cache by its count). A buffer must be put back at most once, and
// not used after; the callers' reference counts already promise that,
// as they did for the sync.Pools these replace.
package offheap

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"syscall"
)

// slabSize is the least memory a class maps at once: a 64 KiB class gets
// 16 buffers per mapping, so that a full cache is a few hundred mappings,
// not thousands.
const slabSize = 1 << 20

// Class is a free list of buffers of Size bytes. Its zero value is not
// usable; see ClassOf. Safe for concurrent use.
type Class struct {
	size int
	mu   sync.Mutex
	free [][]byte
}

// Size is the capacity of the class's buffers.
func (c *Class) Size() int { return c.size }

// Get returns a buffer of c.Size() bytes, reused or fresh. A reused one
// holds what its last user left in it.
func (c *Class) Get() []byte {
	c.mu.Lock()
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		c.mu.Unlock()
		return b
	}
	defer c.mu.Unlock()
	slab := mapSlab(max(c.size, slabSize/c.size*c.size))
	for len(slab) >= 2*c.size {
		c.free = append(c.free, slab[:c.size:c.size])
		slab = slab[c.size:]
	}
	return slab[:c.size:c.size]
}

// Put returns b, which Get gave out, to the class. A buffer of another
// size is left to the garbage collector (a heap buffer) or leaked (a
// mapped one): either way no Get of this class hands it out.
func (c *Class) Put(b []byte) {
	if cap(b) != c.size {
		return
	}
	c.mu.Lock()
	c.free = append(c.free, b[:c.size])
	c.mu.Unlock()
}

// mapSlab maps n bytes of anonymous memory outside the Go heap; where the
// kernel refuses (a memory limit), it falls back to the heap, so that a
// buffer is never missing for lack of a mapping. Under the race detector
// slabs come from the heap: it watches only Go's own memory, and the
// buffers here are where readers and decoders would race.
func mapSlab(n int) []byte {
	mapped.Add(int64(n))
	if raceEnabled {
		return make([]byte, n)
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n)
	}
	return b
}

// classes are the shared classes, by the log2 of their size: 4 KiB to
// 1 TiB, more than any buffer a hostile input can ask for once the
// callers' bounds apply.
var classes = func() (c [41]*Class) {
	for k := minClass; k < len(c); k++ {
		c[k] = &Class{size: 1 << k}
	}
	return c
}()

const minClass = 12

// ClassOf is the shared class of buffers of size n rounded up to a power
// of two (at least 4 KiB).
func ClassOf(n int) *Class {
	return classes[min(max(bits.Len(uint(n-1)), minClass), len(classes)-1)]
}

// Get returns a buffer of n bytes (its capacity a power of two) from the
// shared classes.
func Get(n int) []byte { return ClassOf(n).Get()[:n] }

// Put returns a buffer Get gave out.
func Put(b []byte) { ClassOf(cap(b)).Put(b) }

var mapped atomic.Int64

// Mapped is how many bytes the classes have taken from the kernel so far
// (and keep): the peak of the buffers in use at once, rounded up to slabs.
func Mapped() int64 { return mapped.Load() }
