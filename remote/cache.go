package remote

import "container/list"

// blockLRU holds the most recently used blocks, at most max of them. A
// block's bytes are never written after it is added, so readers copy from
// them without holding any lock; an evicted block lives on only as long as
// a reader still copying from it.
type blockLRU struct {
	max int
	ll  list.List // front is most recently used; values are *lruEntry
	m   map[int64]*list.Element
}

type lruEntry struct {
	idx  int64
	data []byte
}

func newBlockLRU(max int) *blockLRU {
	return &blockLRU{max: max, m: make(map[int64]*list.Element)}
}

// get returns block idx and marks it used.
func (c *blockLRU) get(idx int64) ([]byte, bool) {
	e, ok := c.m[idx]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*lruEntry).data, true
}

// contains reports whether block idx is held, without marking it used:
// read-ahead asks this about blocks nobody has read yet.
func (c *blockLRU) contains(idx int64) bool {
	_, ok := c.m[idx]
	return ok
}

// add holds block idx, evicting the least recently used blocks beyond max.
func (c *blockLRU) add(idx int64, data []byte) {
	if e, ok := c.m[idx]; ok {
		e.Value.(*lruEntry).data = data
		c.ll.MoveToFront(e)
		return
	}
	c.m[idx] = c.ll.PushFront(&lruEntry{idx: idx, data: data})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*lruEntry).idx)
	}
}

func (c *blockLRU) len() int { return c.ll.Len() }
