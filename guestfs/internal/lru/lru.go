// Package lru is the small least-recently-used cache the guest filesystem
// readers share: bounded by a cost budget (bytes, roughly), so that FUSE's
// lookup-then-stat-then-read pattern finds parsed structures again without
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
	mu     sync.Mutex
	budget int
	used   int
	ll     *list.List
	m      map[K]*list.Element
}

type item[K comparable, V any] struct {
	k    K
	v    V
	cost int
}

// New returns a cache holding values whose costs sum to at most budget.
func New[K comparable, V any](budget int) *Cache[K, V] {
	return &Cache[K, V]{budget: budget, ll: list.New(), m: map[K]*list.Element{}}
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

// Put stores v unless its cost alone exceeds the budget.
func (c *Cache[K, V]) Put(k K, v V, cost int) {
	if cost > c.budget {
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
	}
}
