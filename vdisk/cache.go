package vdisk

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovfmount/ovfmount/internal/offheap"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// DefaultCacheSize is the byte budget of a cache made by NewCache(0), and of
// the cache images share when Options.Cache is nil.
const DefaultCacheSize = 64 << 20

// Cache keeps decoded units (grains, clusters) within a byte budget, least
// recently used first out. Concurrent readers of one unit wait for one
// decode. It also owns the decode workers, so that every image of a mount
// shares one bound on CPU use. Safe for concurrent use.
//
// A reader waits, for a worker slot, for a unit another reader decodes,
// or for its source, only as long as its context lives. A decode run
// under a context that ended is abandoned, not failed: whoever waited for
// it decodes the unit again under its own context.
type Cache struct {
	budget int64
	sem    chan struct{} // a slot per concurrent decode (GOMAXPROCS)

	// aheadCtx is the context of read-ahead decodes; Close cancels it, so
	// that none stays blocked on a source after the mount is gone.
	aheadCtx  context.Context
	aheadStop context.CancelFunc

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
	direct  directUnits // units served whole without the cache, lately

	hits, misses, decodes atomic.Int64
	prefixes, finished    atomic.Int64
	lastRead              atomic.Int64 // UnixNano of the latest read's decode (busy)

	// finishes queues units served from their heads, for finishWorker.
	finishes   chan finishTask
	finishOnce sync.Once
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
	ctx, stop := context.WithCancel(context.Background())
	return &Cache{budget: size, sem: make(chan struct{}, workers), entries: map[unitKey]*unitEntry{},
		ahead: make(chan blockmap.Unit, aheadQueue), finishes: make(chan finishTask, finishQueue), aheadCtx: ctx, aheadStop: stop}
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

// PrefixStats reports how many reads were served by decoding only the head
// of a unit, and how many of those units were then decoded whole in the
// background (and cached).
func (c *Cache) PrefixStats() (prefixes, finished int64) {
	return c.prefixes.Load(), c.finished.Load()
}

// loading reports whether u is cached or being decoded.
func (c *Cache) loading(u blockmap.Unit) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[unitKey{u.Dec, u.ID}] != nil
}

// cached pins and returns u's entry when it is decoded and cached, without
// waiting and without counting a miss; nil otherwise. The caller must
// release a returned entry.
func (c *Cache) cached(u blockmap.Unit) *unitEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[unitKey{u.Dec, u.ID}]
	if e == nil || !isDone(e.done) || e.err != nil {
		return nil
	}
	e.refs++
	if e.elem != nil {
		c.lru.MoveToFront(e.elem)
	}
	c.hits.Add(1)
	return e
}

// finish queues u to be decoded whole in the background into the cache,
// after a read was served from its head, so that the unit's checks run and
// a reader coming back finds it cached. The decode runs only while reads
// leave the decode slots idle (see finishWorker): under a steady stream of
// reads a head and a later whole decode would cost the readers more CPU
// than the whole decode did, so the finish waits for a pause. It never
// blocks: when the queue is full, or the cache is closed, the unit is left
// (reported false), and a later read of its tail decodes it whole then.
// done gets the decode's result, if it runs.
func (c *Cache) finish(u blockmap.Unit, done func(error)) bool {
	if c.closed.Load() {
		return false
	}
	c.finishOnce.Do(func() { go c.finishWorker() })
	c.mu.Lock() // serialises with Close, so nothing is sent on a closed channel
	defer c.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	select {
	case c.finishes <- finishTask{u, done}:
		return true
	default:
		return false
	}
}

type finishTask struct {
	u    blockmap.Unit
	done func(error)
}

// finishQueue bounds the units waiting to be finished: 256 units are 16
// MiB of 64 KiB grains decoded, a few dozen milliseconds of one core.
const finishQueue = 256

// idleGap is how long no read may have started a decode before the
// background finish takes a slot: a reader that keeps the daemon busy
// sends its next request within a fraction of that.
const idleGap = 2 * time.Millisecond

// busy records that a read is decoding now.
func (c *Cache) busy() { c.lastRead.Store(time.Now().UnixNano()) }

// finishWorker decodes queued units whole, one at a time, once the
// readers pause (idleGap) and a decode slot is free.
func (c *Cache) finishWorker() {
	for t := range c.finishes {
		for {
			quiet := time.Duration(time.Now().UnixNano() - c.lastRead.Load())
			if quiet >= idleGap {
				select {
				case c.sem <- struct{}{}:
				default:
					quiet = 0
				}
			}
			if quiet >= idleGap {
				break
			}
			select {
			case <-c.aheadCtx.Done():
				return
			case <-time.After(idleGap):
			}
		}
		key := unitKey{t.u.Dec, t.u.ID}
		c.mu.Lock()
		if c.entries[key] != nil { // a reader decoded it meanwhile
			c.mu.Unlock()
			<-c.sem
			continue
		}
		e := &unitEntry{key: key, done: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()
		err := c.decode(c.aheadCtx, e, t.u)
		<-c.sem
		if err == nil {
			c.finished.Add(1)
		}
		t.done(err)
	}
}

// errAbandoned is the error of an entry whose decode stopped because the
// context it ran under ended (its reader was interrupted, or the cache
// closed). It says nothing about the unit, so a reader that waited for the
// entry decodes the unit itself instead of failing with it.
var errAbandoned = errors.New("vdisk: decode abandoned: its reader's context ended")

// acquire returns the unit decoded, decoding it now unless it is cached or
// another reader is decoding it. The caller must release the entry.
func (c *Cache) acquire(ctx context.Context, u blockmap.Unit) (*unitEntry, error) {
	key := unitKey{u.Dec, u.ID}
	c.mu.Lock()
	for {
		e, found, err := c.joinLocked(ctx, key)
		if !found {
			break
		}
		if err != errAbandoned {
			return e, err
		}
		c.mu.Lock()
	}
	e := &unitEntry{key: key, done: make(chan struct{}), refs: 1}
	c.entries[key] = e
	c.mu.Unlock()
	c.misses.Add(1)
	if err := c.load(ctx, e, u); err != nil {
		c.release(e)
		return nil, err
	}
	return e, nil
}

// joinLocked joins the entry for key, if the unit is cached or being
// decoded: it pins the entry, marks it recently used, unlocks c.mu and
// waits for the decode, or for ctx to end (then it unpins the entry and
// returns ctx.Err()). It is called with c.mu held, and leaves it held
// when there is no entry (found false), so that acquire can add one in the
// same critical section: a lookup and an insert in two would let two
// readers both decode the unit. When found, a failed decode's entry is
// released again and its error returned (no hit: the failure is not
// cached, see decode; errAbandoned means "decode it yourself"); otherwise
// the hit is counted and the caller must release e.
func (c *Cache) joinLocked(ctx context.Context, key unitKey) (e *unitEntry, found bool, err error) {
	e = c.entries[key]
	if e == nil {
		return nil, false, nil
	}
	e.refs++
	if e.elem != nil {
		c.lru.MoveToFront(e.elem)
	}
	c.mu.Unlock()
	if !isDone(e.done) { // a cached unit skips the slower two-way wait
		select {
		case <-e.done:
		case <-ctx.Done():
			c.release(e)
			return nil, true, ctx.Err()
		}
	}
	if e.err != nil {
		c.release(e)
		return nil, true, e.err
	}
	c.hits.Add(1)
	return e, true, nil
}

// isDone reports whether ch is closed, without waiting.
func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
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
func (c *Cache) decodeInto(ctx context.Context, u blockmap.Unit, dst []byte) error {
	key := unitKey{u.Dec, u.ID}
	c.mu.Lock()
	for {
		e, found, err := c.joinLocked(ctx, key)
		if !found {
			break
		}
		if err == errAbandoned {
			c.mu.Lock()
			continue
		}
		if err != nil {
			return err
		}
		copy(dst, e.data)
		c.release(e)
		return nil
	}
	c.mu.Unlock()
	c.misses.Add(1)
	c.busy()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	c.decodes.Add(1)
	if err := safeDecode(ctx, u, dst); err != nil {
		return err
	}
	c.mu.Lock()
	c.direct.add(key)
	c.mu.Unlock()
	return nil
}

// safeDecode turns a decoder's panic into an error, so a bug in one
// format fails one read instead of the process (decodes also run on
// read-ahead goroutines, where nothing else would recover it).
func safeDecode(ctx context.Context, u blockmap.Unit, dst []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{r}
		}
	}()
	return u.Dec.DecodeUnit(ctx, dst, u)
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

// Close stops the read-ahead workers, abandoning the decodes they run.
// Reads still work afterwards, without read-ahead.
func (c *Cache) Close() {
	c.aheadOnce.Do(func() {}) // no workers may start after this
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed.Store(true)
		close(c.ahead)
		close(c.finishes)
		c.mu.Unlock()
		c.aheadStop()
	})
}

func (c *Cache) aheadWorker() {
	for u := range c.ahead {
		key := unitKey{u.Dec, u.ID}
		c.mu.Lock()
		if c.entries[key] != nil || c.direct.has(key) {
			c.mu.Unlock()
			continue
		}
		e := &unitEntry{key: key, done: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()
		c.load(c.aheadCtx, e, u)
	}
}

// load decodes e on a worker slot, waiting for one if all are busy, and
// returns the decode's error, or ctx.Err() when ctx ended first.
func (c *Cache) load(ctx context.Context, e *unitEntry, u blockmap.Unit) error {
	c.busy()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		c.fail(e, errAbandoned)
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	return c.decode(ctx, e, u)
}

// decode fills e and publishes it. A failed decode is not cached: the
// failure may be transient (an I/O error), and readers of a damaged unit
// get the same error again from the next attempt. A decode that failed
// because ctx ended is abandoned (see errAbandoned): the unit is not
// damaged, and the readers waiting for it must not fail with another
// reader's interruption.
func (c *Cache) decode(ctx context.Context, e *unitEntry, u blockmap.Unit) error {
	c.decodes.Add(1)
	buf := getBuf(u.Size)
	err := safeDecode(ctx, u, buf)
	if err != nil {
		putBuf(buf)
		if ctxErr := ctx.Err(); ctxErr != nil {
			c.fail(e, errAbandoned)
			return ctxErr
		}
		c.fail(e, err)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e.data = buf
	e.elem = c.lru.PushFront(e)
	c.used += int64(cap(buf))
	close(e.done)
	for c.used > c.budget && c.lru.Len() > 1 {
		c.evict(c.lru.Back().Value.(*unitEntry))
	}
	return nil
}

// fail publishes e as failed with err and drops it from the cache, so that
// the next reader of the unit starts a new decode.
func (c *Cache) fail(e *unitEntry, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.err = err
	delete(c.entries, e.key)
	close(e.done)
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

// Decoded units live outside the Go heap (see package offheap): the cache
// is the daemon's largest holding, and on the heap the collector's
// headroom doubled what it cost. Their sizes are rounded up to a power of
// two.
func getBuf(n int) []byte { return offheap.Get(n) }

func putBuf(b []byte) { offheap.Put(b) }
