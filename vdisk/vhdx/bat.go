package vhdx

import (
	"container/list"
	"encoding/binary"
	"fmt"
	"sync"
)

// BAT entry states ([MS-VHDX] 2.5.1.1), as qemu reads them. State 5 is the
// UNMAPPED value of the 0.95 draft, which qemu still accepts.
const (
	blockNotPresent       = 0
	blockUndefined        = 1
	blockZero             = 2
	blockUnmapped         = 3
	blockUnmappedV095     = 5
	blockFullyPresent     = 6
	blockPartiallyPresent = 7

	sbBlockPresent   = 6       // a sector bitmap block's state when it is in the file
	sectorBitmapSize = 1 * mib // every sector bitmap block

	batStateMask = 7
)

// batLimits decide between loading the BAT whole at Open and paging it
// through a small LRU. A variable, not constants, so tests can force the
// paged path on small images.
var batLimits = struct {
	whole     int64 // entries loaded at Open
	pageSize  int64 // entries per page
	pageCount int   // pages kept in the LRU
}{whole: 1 << 20, pageSize: 4096, pageCount: 64}

// bat gives access to the Block Allocation Table. Up to batLimits.whole
// entries (8 MiB, 32 TiB of 32 MiB blocks) it is read and validated at
// Open; beyond that, pages are read, validated and cached on demand, so a
// huge sparse disk costs neither a huge read at Open nor a huge resident
// table. A BAT larger than the member itself (possible only where a log
// replay grew the file) is paged too, so the table held in memory is never
// larger than the member.
type bat struct {
	img      *Image
	off      int64 // file offset of entry 0
	n        int64 // entries, sector bitmap entries included
	pageSize int64

	whole []uint64

	mu    sync.Mutex
	pages map[int64]*list.Element
	lru   *list.List
	max   int
}

type batPage struct {
	index   int64
	entries []uint64
}

func newBAT(img *Image, off, n int64) (*bat, error) {
	b := &bat{img: img, off: off, n: n, pageSize: batLimits.pageSize}
	if n <= batLimits.whole && 8*n <= img.view.size {
		b.pageSize = max(n, 1)
		whole, err := b.load(0)
		if err != nil {
			return nil, err
		}
		b.whole = whole
		return b, nil
	}
	b.pages = map[int64]*list.Element{}
	b.lru = list.New()
	b.max = max(batLimits.pageCount, 1)
	return b, nil
}

// page returns the validated page holding BAT index i, and that page's
// first index. The slice is shared and must not be modified.
func (b *bat) page(i int64) ([]uint64, int64, error) {
	if b.whole != nil {
		return b.whole, 0, nil
	}
	p := i / b.pageSize
	b.mu.Lock()
	if el, ok := b.pages[p]; ok {
		b.lru.MoveToFront(el)
		b.mu.Unlock()
		return el.Value.(*batPage).entries, p * b.pageSize, nil
	}
	b.mu.Unlock()

	entries, err := b.load(p)
	if err != nil {
		return nil, 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.pages[p]; ok { // loaded meanwhile by another reader
		b.lru.MoveToFront(el)
		return el.Value.(*batPage).entries, p * b.pageSize, nil
	}
	b.pages[p] = b.lru.PushFront(&batPage{index: p, entries: entries})
	for b.lru.Len() > b.max {
		old := b.lru.Remove(b.lru.Back()).(*batPage)
		delete(b.pages, old.index)
	}
	return entries, p * b.pageSize, nil
}

// load reads page p and validates every entry in it.
func (b *bat) load(p int64) ([]uint64, error) {
	first := p * b.pageSize
	n := min(b.pageSize, b.n-first)
	raw := make([]byte, 8*n)
	if _, err := b.img.view.ReadAt(raw, b.off+8*first); err != nil {
		return nil, readFail(b.img.name, fmt.Sprintf("BAT entries %d to %d", first, first+n-1), b.off+8*first, err)
	}
	entries := make([]uint64, n)
	for j := range entries {
		entries[j] = binary.LittleEndian.Uint64(raw[8*j:])
		if err := b.img.checkEntry(first+int64(j), entries[j]); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// checkEntry validates the placement of a present payload block, as qemu
// does at open: inside the file, and clear of the header section, the log,
// the BAT and the metadata. States are checked when the block is read, as
// qemu does, so one bad block fails its reads, not the whole disk. Sector
// bitmap entries only matter to differencing disks: there a present one
// (and a PARTIALLY_PRESENT payload block) is placed under the same rules.
func (img *Image) checkEntry(i int64, e uint64) error {
	// length must lie in the file; extent must not overlap a structure.
	var what string
	var length, extent int64
	if (i+1)%(img.chunkRatio+1) == 0 {
		if !img.child || e&batStateMask != sbBlockPresent {
			return nil
		}
		what, length, extent = "sector bitmap", sectorBitmapSize, sectorBitmapSize
	} else {
		st := e & batStateMask
		if st != blockFullyPresent && !(img.child && st == blockPartiallyPresent) {
			return nil
		}
		block := i - i/(img.chunkRatio+1)
		what, length, extent = fmt.Sprintf("block %d", block), min(img.blockSize, img.size-block*img.blockSize), img.blockSize
	}
	mb := e >> 20
	if mb >= 1<<42 {
		return corrupt(img.name, "BAT entry %d (%s) has an absurd file offset of %d MiB", i, what, mb)
	}
	off := int64(mb) << 20
	if off+length > img.view.eff {
		return corrupt(img.name, "BAT entry %d (%s) points at %d, past the end of the file (%d bytes)",
			i, what, off, img.view.eff)
	}
	if o, ok := img.spans.overlap(off, off+extent); ok {
		return corrupt(img.name, "BAT entry %d (%s) at %d overlaps %s [%d, %d)", i, what, off, o.what, o.off, o.end)
	}
	return nil
}
