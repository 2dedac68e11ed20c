package qcow2

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// offsetMask extracts a cluster offset from an L1 entry or a standard L2
// entry (bits 9-55).
const offsetMask = 0x00fffffffffffe00

// l2CacheBytes bounds the memory the L2 cache holds. With 64 KiB clusters
// that is 64 tables covering 32 GiB of virtual disk; with 2 MiB clusters
// tables are 2 MiB each, so fewer are kept.
const (
	l2CacheBytes = 4 << 20
	l2CacheMin   = 2
	l2CacheMax   = 1024
)

// l2Cache keeps recently used L2 tables, decoded to host byte order, keyed
// by their offset in the file. Tables are immutable once cached, so a
// caller may keep using one after it is evicted.
type l2Cache struct {
	mu    sync.Mutex
	max   int
	clock uint64
	m     map[int64]*l2Slot
}

type l2Slot struct {
	table l2table
	used  uint64
}

// l2table holds the entries of an L2 table that are in the file. A table
// cut short by the end of the file reads as zero-padded, as in qemu, so
// entries past the slice are 0 (unallocated); keeping only the entries
// present bounds the memory by the file's size.
type l2table []uint64

func (t l2table) at(k int64) uint64 {
	if k < int64(len(t)) {
		return t[k]
	}
	return 0
}

func newL2Cache(clusterSize int64) *l2Cache {
	n := int(min(max(l2CacheBytes/clusterSize, l2CacheMin), l2CacheMax))
	return &l2Cache{max: n, m: map[int64]*l2Slot{}}
}

func (c *l2Cache) get(off int64) l2table {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[off]
	if !ok {
		return nil
	}
	c.clock++
	s.used = c.clock
	return s.table
}

// put inserts a freshly read table, evicting the least recently used one
// when full. If a concurrent miss inserted the same table first, that one
// is returned so that all callers share it.
func (c *l2Cache) put(off int64, t l2table) l2table {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clock++
	if s, ok := c.m[off]; ok {
		s.used = c.clock
		return s.table
	}
	for len(c.m) >= c.max {
		var victim int64
		oldest := ^uint64(0)
		for k, s := range c.m {
			if s.used < oldest {
				victim, oldest = k, s.used
			}
		}
		delete(c.m, victim)
	}
	c.m[off] = &l2Slot{table: t, used: c.clock}
	return t
}

// l2Table returns the L2 table that L1 entry l1i points at, after checking
// that it is aligned, starts inside the member and is clear of the other
// metadata.
// The caller has already handled an unallocated (zero) entry.
func (img *Image) l2Table(l1i int64, off int64) (l2table, error) {
	cs := img.clusterSize
	switch {
	case off&(cs-1) != 0:
		return nil, errCorrupt(img.name, "L1 entry %d: L2 table offset %#x is unaligned to the %d-byte cluster size", l1i, off, cs)
	case off >= img.fileSize:
		return nil, errCorrupt(img.name, "L1 entry %d: L2 table at %d is past the end of the file (%d)", l1i, off, img.fileSize)
	}
	if what := img.metadataAt(off, cs); what != "" {
		return nil, errCorrupt(img.name, "L1 entry %d: L2 table at %d overlaps the %s", l1i, off, what)
	}
	if t := img.l2.get(off); t != nil {
		return t, nil
	}
	n := min(cs, img.fileSize-off)
	buf := make([]byte, (n+7)&^7) // a partial last entry is zero-padded
	if _, err := img.src.ReadAt(buf[:n], off); err != nil {
		return nil, fmt.Errorf("qcow2: %s: reading the L2 table of L1 entry %d at %d: %w", img.name, l1i, off, err)
	}
	t := make(l2table, len(buf)/8)
	for i := range t {
		t[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	return img.l2.put(off, t), nil
}

// metadataAt names the fixed metadata structure that [off, off+n)
// overlaps, or returns "". A cluster mapped onto the header, the L1 table
// or the refcount table is a corrupt (or hostile) image: serving it would
// expose metadata as disk content.
func (img *Image) metadataAt(off, n int64) string {
	end := off + n
	switch {
	case off < img.clusterSize:
		return "header cluster"
	case off < img.l1End && end > img.l1Start:
		return "L1 table"
	case off < img.refEnd && end > img.refStart:
		return "refcount table"
	}
	return ""
}
