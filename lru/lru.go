// Package lru is the small least-recently-used cache of parsed structures
// that the guest filesystem readers and the mount's guest trees share:
// bounded by a cost budget (bytes, roughly, or a count), so that FUSE's
// lookup-then-stat-then-read pattern finds what it parsed again without
// letting a hostile volume grow memory past the budget. It is safe for
// concurrent use.
package lru

import (
	"container/list"
	"sync"
)

// Cache maps keys to values, evicting the least recently used past its
// budget.
type Cache[K comparable, V any] struct {
	mu      sync.Mutex
	budget  int
	itemMax int // the costliest value kept
	used    int
	ll      *list.List
	m       map[K]*list.Element
	evict   func(V) // when set, called with each value dropped
}

type item[K comparable, V any] struct {
	k    K
	v    V
	cost int
}

// New returns a cache holding values whose costs sum to at most budget.
func New[K comparable, V any](budget int) *Cache[K, V] {
	return &Cache[K, V]{budget: budget, itemMax: budget, ll: list.New(), m: map[K]*list.Element{}}
}

// SetItemMax keeps the cache from holding any value that costs more than
// max, so that one large value does not flush all the small ones. Call it
// before the cache is used.
func (c *Cache[K, V]) SetItemMax(max int) { c.itemMax = min(max, c.budget) }

// SetEvict has fn called, under the cache's lock, with each value the
// cache drops, so that its memory can be recycled; readers then must use
// values through With, not Get. Call it before the cache is used.
func (c *Cache[K, V]) SetEvict(fn func(V)) { c.evict = fn }

// With calls fn with k's value under the cache's lock, marking it recently
// used, so that a value dropped and recycled meanwhile (see SetEvict) is
// never used; false when k is not cached.
func (c *Cache[K, V]) With(k K, fn func(V)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if ok {
		c.ll.MoveToFront(e)
		fn(e.Value.(*item[K, V]).v)
	}
	return ok
}

// Get returns k's value, marking it recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*item[K, V]).v, true
	}
	var zero V
	return zero, false
}

// Put stores v unless its cost alone exceeds the budget (or the item
// maximum, see SetItemMax).
func (c *Cache[K, V]) Put(k K, v V, cost int) {
	if cost > c.itemMax {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		it := e.Value.(*item[K, V])
		c.used += cost - it.cost
		it.v, it.cost = v, cost
		c.ll.MoveToFront(e)
	} else {
		c.m[k] = c.ll.PushFront(&item[K, V]{k, v, cost})
		c.used += cost
	}
	for c.used > c.budget {
		e := c.ll.Back()
		it := e.Value.(*item[K, V])
		c.ll.Remove(e)
		delete(c.m, it.k)
		c.used -= it.cost
		if c.evict != nil {
			c.evict(it.v)
		}
	}
}
