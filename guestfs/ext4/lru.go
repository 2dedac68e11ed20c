package ext4

import "sync"

// lru is a bounded least-recently-used cache safe for concurrent use. The
// reader keeps parsed inodes and metadata blocks in two of them so that a
// walk touching every file reads each inode-table and directory block once,
// while memory stays bounded whatever the volume holds.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	items map[K]*lruNode[K, V]
	head  lruNode[K, V] // sentinel: head.next is the most recently used
}

type lruNode[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruNode[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	if max < 1 {
		max = 1
	}
	c := &lru[K, V]{max: max, items: make(map[K]*lruNode[K, V], max)}
	c.head.next, c.head.prev = &c.head, &c.head
	return c
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.unlink(n)
	c.pushFront(n)
	return n.val, true
}

func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.items[k]; ok {
		n.val = v
		c.unlink(n)
		c.pushFront(n)
		return
	}
	var n *lruNode[K, V]
	if len(c.items) >= c.max {
		// Reuse the least recently used node rather than allocate.
		n = c.head.prev
		c.unlink(n)
		delete(c.items, n.key)
	} else {
		n = &lruNode[K, V]{}
	}
	n.key, n.val = k, v
	c.items[k] = n
	c.pushFront(n)
}

func (c *lru[K, V]) unlink(n *lruNode[K, V]) {
	n.prev.next = n.next
	n.next.prev = n.prev
}

func (c *lru[K, V]) pushFront(n *lruNode[K, V]) {
	n.prev = &c.head
	n.next = c.head.next
	c.head.next.prev = n
	c.head.next = n
}
