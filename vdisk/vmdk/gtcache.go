package vmdk

import "sync"

// gtCache is a small LRU of grain tables keyed by directory index. Tables
// are 2 KiB (32 KiB in seSparse, whose entries are 64-bit) and a disk can
// have tens of thousands of them, so only the recently used ones stay in
// memory.
type gtCache[E uint32 | uint64] struct {
	mu   sync.Mutex
	max  int
	m    map[uint32]*gtNode[E]
	head gtNode[E] // sentinel: head.next is the most recently used
}

type gtNode[E uint32 | uint64] struct {
	idx        uint32
	gt         []E
	prev, next *gtNode[E]
}

func (c *gtCache[E]) init(max int) {
	c.max = max
	c.m = make(map[uint32]*gtNode[E])
	c.head.prev, c.head.next = &c.head, &c.head
}

// get returns table idx or nil.
func (c *gtCache[E]) get(idx uint32) []E {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.m[idx]
	if n == nil {
		return nil
	}
	c.unlink(n)
	c.pushFront(n)
	return n.gt
}

// put stores table idx. Two readers may load the same table at once; the
// second copy simply refreshes the entry.
func (c *gtCache[E]) put(idx uint32, gt []E) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.m[idx]; n != nil {
		c.unlink(n)
		c.pushFront(n)
		return
	}
	var n *gtNode[E]
	if len(c.m) >= c.max {
		n = c.head.prev
		c.unlink(n)
		delete(c.m, n.idx)
	} else {
		n = new(gtNode[E])
	}
	n.idx, n.gt = idx, gt
	c.m[idx] = n
	c.pushFront(n)
}

func (c *gtCache[E]) unlink(n *gtNode[E]) {
	n.prev.next = n.next
	n.next.prev = n.prev
}

func (c *gtCache[E]) pushFront(n *gtNode[E]) {
	n.prev = &c.head
	n.next = c.head.next
	c.head.next.prev = n
	c.head.next = n
}
