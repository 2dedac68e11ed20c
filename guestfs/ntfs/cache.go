package ntfs

import "github.com/ovfmount/ovfmount/lru"

// newCache is a cache bounded by the summed cost (about the bytes) of what
// it holds, that keeps no value costing more than a quarter of its budget;
// the values are immutable, so that callers share them.
func newCache[K comparable, V any](budget int) *lru.Cache[K, V] {
	c := lru.New[K, V](budget)
	c.SetItemMax(budget / 4)
	return c
}
