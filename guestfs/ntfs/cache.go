package ntfs

import (
	"container/list"
	"sync"
)

// lru is a cache bounded by the summed cost (about the bytes) of what it
// holds; the values are immutable, so that callers share them.
type lru[K comparable, V any] struct {
	mu     sync.Mutex
	budget int
	used   int
	ll     *list.List
	items  map[K]*list.Element
	evict  func(V) // when set, called with each value dropped
}

type lruItem[K comparable, V any] struct {
	key  K
	val  V
	cost int
}

func newLRU[K comparable, V any](budget int) *lru[K, V] {
	return &lru[K, V]{budget: budget, ll: list.New(), items: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

// with calls fn with k's value under the cache's lock, so that a value
// dropped (and recycled by evict) meanwhile is never used; false when k
// is not cached.
func (c *lru[K, V]) with(k K, fn func(V)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if ok {
		c.ll.MoveToFront(e)
		fn(e.Value.(*lruItem[K, V]).val)
	}
	return ok
}

// put adds v; one costing more than a quarter of the budget is not kept.
func (c *lru[K, V]) put(k K, v V, cost int) {
	if cost > c.budget/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		it := e.Value.(*lruItem[K, V])
		c.used += cost - it.cost
		it.val, it.cost = v, cost
		c.ll.MoveToFront(e)
	} else {
		c.items[k] = c.ll.PushFront(&lruItem[K, V]{k, v, cost})
		c.used += cost
	}
	for c.used > c.budget {
		e := c.ll.Back()
		it := e.Value.(*lruItem[K, V])
		c.ll.Remove(e)
		delete(c.items, it.key)
		c.used -= it.cost
		if c.evict != nil {
			c.evict(it.val)
		}
	}
}
