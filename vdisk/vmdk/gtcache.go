package vmdk

import "sync"

// gtCache is a small LRU of grain tables keyed by directory index. Tables
// are 2 KiB and a disk can have tens of thousands of them, so only the
// recently used ones stay in memory.
type gtCache struct {
	mu   sync.Mutex
	max  int
	m    map[uint32]*gtNode
	head gtNode // sentinel: head.next is the most recently used
}

type gtNode struct {
	idx        uint32
	gt         []uint32
	prev, next *gtNode
}

func (c *gtCache) init(max int) {
	c.max = max
	c.m = make(map[uint32]*gtNode)
	c.head.prev, c.head.next = &c.head, &c.head
}

// get returns table idx or nil.
func (c *gtCache) get(idx uint32) []uint32 {
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
func (c *gtCache) put(idx uint32, gt []uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.m[idx]; n != nil {
		c.unlink(n)
		c.pushFront(n)
		return
	}
	var n *gtNode
	if len(c.m) >= c.max {
		n = c.head.prev
		c.unlink(n)
		delete(c.m, n.idx)
	} else {
		n = new(gtNode)
	}
	n.idx, n.gt = idx, gt
	c.m[idx] = n
	c.pushFront(n)
}

func (c *gtCache) unlink(n *gtNode) {
	n.prev.next = n.next
	n.next.prev = n.prev
}

func (c *gtCache) pushFront(n *gtNode) {
	n.prev = &c.head
	n.next = c.head.next
	c.head.next.prev = n
	c.head.next = n
}
