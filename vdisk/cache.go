package vdisk

import (
	"container/list"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// DefaultCacheSize is the byte budget of a cache made by NewCache(0), and of
// the cache images share when Options.Cache is nil.
const DefaultCacheSize = 64 << 20

// Cache keeps decoded units (grains, clusters) within a byte budget, least
// recently used first out. Concurrent readers of one unit wait for one
// decode. It also owns the decode workers, so that every image of a mount
// shares one bound on CPU use. Safe for concurrent use.
type Cache struct {
	budget int64
	sem    chan struct{} // a slot per concurrent decode (GOMAXPROCS)

	// ahead queues units to decode ahead of sequential readers; its
	// workers take decode slots like readers do, one unit at a time, so a
	// reader never waits behind more than one read-ahead decode per slot.
	ahead     chan blockmap.Unit
	aheadOnce sync.Once
	closeOnce sync.Once
	closed    atomic.Bool

	mu      sync.Mutex
	used    int64
	lru     list.List // of *unitEntry, most recent at the front
	entries map[unitKey]*unitEntry

	hits, misses, decodes atomic.Int64
}

type unitKey struct {
	dec blockmap.Decoder
	id  int64
}

// unitEntry is one decoded unit. While loading, done is open and elem nil.
// Readers pin it (refs) while they copy out of data, so an eviction never
// recycles a buffer someone is reading; the last one out frees it.
type unitEntry struct {
	key     unitKey
	data    []byte
	err     error
	done    chan struct{}
	elem    *list.Element
	refs    int32 // guarded by Cache.mu
	evicted bool  // guarded by Cache.mu
}

// NewCache returns a cache with a budget of size bytes (0: the default) and
// workers decode workers (0: GOMAXPROCS).
func NewCache(size int64, workers int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	if workers <= 0 {
		workers = defaultWorkers()
	}
	return &Cache{budget: size, sem: make(chan struct{}, workers), entries: map[unitKey]*unitEntry{},
		ahead: make(chan blockmap.Unit, aheadQueue)}
}

var (
	sharedOnce  sync.Once
	sharedCache *Cache
)

func defaultCache() *Cache {
	sharedOnce.Do(func() { sharedCache = NewCache(0, 0) })
	return sharedCache
}

// Stats reports cache hits, misses and decodes so far.
func (c *Cache) Stats() (hits, misses, decodes int64) {
	return c.hits.Load(), c.misses.Load(), c.decodes.Load()
}

// acquire returns the unit decoded, decoding it now unless it is cached or
// another reader is decoding it. The caller must release the entry.
func (c *Cache) acquire(u blockmap.Unit) (*unitEntry, error) {
	key := unitKey{u.Dec, u.ID}
	c.mu.Lock()
	if e, found, err := c.joinLocked(key); found {
		return e, err
	}
	e := &unitEntry{key: key, done: make(chan struct{}), refs: 1}
	c.entries[key] = e
	c.mu.Unlock()
	c.misses.Add(1)
	c.load(e, u)
	if e.err != nil {
		c.release(e)
		return nil, e.err
	}
	return e, nil
}

// joinLocked joins the entry for key, if the unit is cached or being
// decoded: it pins the entry, marks it recently used, unlocks c.mu and
// waits for the decode. It is called with c.mu held, and leaves it held
// when there is no entry (found false), so that acquire can add one in the
// same critical section: a lookup and an insert in two would let two
// readers both decode the unit. When found, a failed decode's entry is
// released again and its error returned (no hit: the failure is not
// cached, see decode); otherwise the hit is counted and the caller must
// release e.
func (c *Cache) joinLocked(key unitKey) (e *unitEntry, found bool, err error) {
	e = c.entries[key]
	if e == nil {
		return nil, false, nil
	}
	e.refs++
	if e.elem != nil {
		c.lru.MoveToFront(e.elem)
	}
	c.mu.Unlock()
	<-e.done
	if e.err != nil {
		c.release(e)
		return nil, true, e.err
	}
	c.hits.Add(1)
	return e, true, nil
}

// aheadQueue bounds the units waiting to be decoded ahead of readers:
// enough for the largest read-ahead window of a few readers, and a bound on
// the memory a burst of read-ahead can claim.
const aheadQueue = 512

// decodeInto serves a unit a read covers whole straight into dst (the
// reply buffer), without a cache entry. A reader that wants whole units is
// a sequential one (dd, cp, a backup), which never rereads them and whose
// pages the kernel keeps anyway; caching them would flush the units that
// random readers (a running VM) depend on. A unit cached or being decoded
// is copied from there instead.
func (c *Cache) decodeInto(u blockmap.Unit, dst []byte) error {
	key := unitKey{u.Dec, u.ID}
	c.mu.Lock()
	if e, found, err := c.joinLocked(key); found {
		if err != nil {
			return err
		}
		copy(dst, e.data)
		c.release(e)
		return nil
	}
	c.mu.Unlock()
	c.misses.Add(1)
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	c.decodes.Add(1)
	return safeDecode(u, dst)
}

// safeDecode turns a decoder's panic into an error, so a bug in one
// format fails one read instead of the process (decodes also run on
// read-ahead goroutines, where nothing else would recover it).
func safeDecode(u blockmap.Unit, dst []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{r}
		}
	}()
	return u.Dec.DecodeUnit(dst, u)
}

// prefetch queues u to be decoded in the background unless it is cached or
// being decoded. A full queue drops it: read-ahead is a hint.
func (c *Cache) prefetch(u blockmap.Unit) {
	c.aheadOnce.Do(func() {
		for range cap(c.sem) {
			go c.aheadWorker()
		}
	})
	if c.closed.Load() {
		return
	}
	c.mu.Lock() // serialises with Close, so nothing is sent on a closed channel
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	select {
	case c.ahead <- u:
	default:
	}
}

// Close stops the read-ahead workers. Reads still work afterwards, without
// read-ahead.
func (c *Cache) Close() {
	c.aheadOnce.Do(func() {}) // no workers may start after this
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed.Store(true)
		close(c.ahead)
		c.mu.Unlock()
	})
}

func (c *Cache) aheadWorker() {
	for u := range c.ahead {
		key := unitKey{u.Dec, u.ID}
		c.mu.Lock()
		if c.entries[key] != nil {
			c.mu.Unlock()
			continue
		}
		e := &unitEntry{key: key, done: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()
		c.load(e, u)
	}
}

// load decodes e on a worker slot, waiting for one if all are busy.
func (c *Cache) load(e *unitEntry, u blockmap.Unit) {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	c.decode(e, u)
}

// decode fills e and publishes it. A failed decode is not cached: the
// failure may be transient (an I/O error), and readers of a damaged unit
// get the same error again from the next attempt.
func (c *Cache) decode(e *unitEntry, u blockmap.Unit) {
	c.decodes.Add(1)
	buf := getBuf(u.Size)
	err := safeDecode(u, buf)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		putBuf(buf)
		e.err = err
		delete(c.entries, e.key)
		close(e.done)
		return
	}
	e.data = buf
	e.elem = c.lru.PushFront(e)
	c.used += int64(cap(buf))
	close(e.done)
	for c.used > c.budget && c.lru.Len() > 1 {
		c.evict(c.lru.Back().Value.(*unitEntry))
	}
}

// evict drops e from the cache; its buffer is recycled once no reader
// holds it. Called with c.mu held.
func (c *Cache) evict(e *unitEntry) {
	c.lru.Remove(e.elem)
	e.elem = nil
	delete(c.entries, e.key)
	c.used -= int64(cap(e.data))
	e.evicted = true
	if e.refs == 0 {
		putBuf(e.data)
		e.data = nil
	}
}

func (c *Cache) release(e *unitEntry) {
	c.mu.Lock()
	e.refs--
	if e.evicted && e.refs == 0 && e.data != nil {
		putBuf(e.data)
		e.data = nil
	}
	c.mu.Unlock()
}

// Buffers come from pools per power-of-two size, so decoding does not
// allocate a unit's worth of memory each time.
var bufPools [32]sync.Pool

func getBuf(n int) []byte {
	class := bits.Len(uint(n - 1))
	if p, ok := bufPools[class].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<class)
}

func putBuf(b []byte) {
	class := bits.Len(uint(cap(b) - 1))
	if cap(b) != 1<<class {
		return
	}
	b = b[:cap(b)]
	bufPools[class].Put(&b)
}
