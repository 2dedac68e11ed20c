package vdisk

import (
	"sync"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// readAhead notices sequential readers and decodes the units ahead of
// them. The kernel already reads ahead for buffered readers, but a reader
// that bypasses the page cache (qemu with cache=none, dd iflag=direct) is
// served one request at a time, and would leave all but one core idle.
type readAhead struct {
	mu     sync.Mutex
	next   int64 // where the most recent sequential read ended
	streak int   // consecutive reads that continued a sequence
	done   int64 // read-ahead was issued up to here
}

const (
	// readAheadMin and readAheadMax bound the window of bytes decoded
	// ahead: it starts small, so a short sequential burst costs little,
	// and doubles while the reader keeps going.
	readAheadMin = 512 << 10
	readAheadMax = 8 << 20
	// sequentialSlack is how far a read may start from where the previous
	// one ended and still count as sequential. The kernel issues
	// read-ahead requests concurrently, so they arrive slightly out of
	// order.
	sequentialSlack = 4 << 20
	// aheadStreak is how many reads in a row must continue a sequence
	// before units are decoded ahead. One is no proof: a random reader
	// lands within sequentialSlack of its previous read now and then (one
	// read in 500 over a 4 GiB disk), and decoding 8 units ahead for it,
	// with the checks of their records a verified member then runs, cost
	// a twentieth of the CPU of verified random 4 KiB reads.
	aheadStreak = 2
)

func (ra *readAhead) observe(im *image, off, n int64) {
	end := off + n
	ra.mu.Lock()
	near := ra.next > 0 && off >= ra.next-sequentialSlack && off <= ra.next+sequentialSlack
	switch {
	case !near:
		// A jump: a new sequence may start here.
		ra.streak, ra.next, ra.done = 0, end, end
		ra.mu.Unlock()
		return
	case end <= ra.next:
		// A request that arrived out of order, or a re-read: neither
		// proves nor disproves a sequence.
		ra.mu.Unlock()
		return
	}
	ra.streak++
	ra.next = end
	if ra.streak < aheadStreak {
		ra.mu.Unlock()
		return
	}
	window := min(int64(readAheadMin)<<min(ra.streak, 8), readAheadMax)
	from := max(ra.done, ra.next)
	to := min(ra.next+window, im.size)
	if to <= from {
		ra.mu.Unlock()
		return
	}
	ra.done = to
	ra.mu.Unlock()
	im.prefetch(from, to)
}

// prefetch starts decoding the compressed units of [from, to) that are
// not cached, on idle workers only.
func (im *image) prefetch(from, to int64) {
	var last blockmap.Unit
	for pos := from; pos < to; {
		r, err := im.mapRun(pos)
		if err != nil {
			return // the reader will meet the error itself
		}
		if r.Kind == blockmap.Compressed && r.Unit != last {
			im.cache.prefetch(r.Unit)
			last = r.Unit
		}
		pos = r.End()
	}
}
