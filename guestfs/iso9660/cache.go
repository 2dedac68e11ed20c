package iso9660

import (
	"container/list"
	"sync"
)

// lru is a small least-recently-used cache bounded by a cost budget (bytes,
// roughly): parsed directories and directories and records are kept so that FUSE's
// lookup-then-stat-then-read pattern does not walk the FAT again, without
// letting a hostile volume grow memory past the budget.
type lru[K comparable, V any] struct {
	mu     sync.Mutex
	budget int
	used   int
	ll     *list.List
	m      map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	k    K
	v    V
	cost int
}

func newLRU[K comparable, V any](budget int) *lru[K, V] {
	return &lru[K, V]{budget: budget, ll: list.New(), m: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).v, true
	}
	var zero V
	return zero, false
}

// put stores v unless its cost alone exceeds the budget.
func (c *lru[K, V]) put(k K, v V, cost int) {
	if cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		it := e.Value.(*lruItem[K, V])
		c.used += cost - it.cost
		it.v, it.cost = v, cost
		c.ll.MoveToFront(e)
	} else {
		c.m[k] = c.ll.PushFront(&lruItem[K, V]{k, v, cost})
		c.used += cost
	}
	for c.used > c.budget {
		e := c.ll.Back()
		it := e.Value.(*lruItem[K, V])
		c.ll.Remove(e)
		delete(c.m, it.k)
		c.used -= it.cost
	}
}
