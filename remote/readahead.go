package remote

import "sync"

// Read-ahead follows the kernel's page cache heuristic: a read that starts
// where an earlier one ended continues a sequential stream, and a stream
// that keeps going has the blocks ahead of it fetched before they are
// asked for. Several streams are followed at once (a checksum pass over
// one disk while another is being copied, say), each with a window that
// doubles with every sequential read up to the ReadAhead limit, so a
// couple of adjacent reads cost little and a long copy runs at full speed.

const raStreams = 8

type readahead struct {
	mu      sync.Mutex
	streams [raStreams]raStream
	clock   uint64
}

type raStream struct {
	next  int64  // where the stream's next read is expected to start
	bytes int64  // bytes the stream has read
	hits  int    // sequential reads so far
	used  uint64 // clock at the last read: the least recent stream is replaced
}

// observe records a read of n bytes at off. It returns how many blocks
// ahead of the read should be in memory or on the way: 0 unless the read
// continues a stream that has read at least minBytes. slack lets a read
// start a little before or after where the stream ended, as the kernel's
// concurrent reads of one file arrive slightly out of order; minBytes
// keeps small reads that hop forward (a tar index scan reading one
// 512-byte header after another) from counting as a copy.
func (ra *readahead) observe(off, n, slack, minBytes int64, limit int) int {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.clock++
	oldest := 0
	for i := range ra.streams {
		s := &ra.streams[i]
		if s.used != 0 && off >= s.next-slack && off <= s.next+slack {
			s.next = max(s.next, off+n)
			s.bytes += n
			s.hits++
			s.used = ra.clock
			if s.bytes < minBytes {
				return 0
			}
			return min(limit, 1<<min(s.hits, 30))
		}
		if s.used < ra.streams[oldest].used {
			oldest = i
		}
	}
	ra.streams[oldest] = raStream{next: off + n, bytes: n, used: ra.clock}
	return 0
}

// readAhead starts fetching the blocks ahead of a read of n bytes at off,
// if it continues a stream. It tops up the window only when the next
// block is missing or half the window is, so read-ahead requests cover
// several blocks rather than one each time the reader enters a new block.
// It never waits: without a free read-ahead slot it leaves the blocks to
// the reads that need them.
func (f *File) readAhead(off, n int64) {
	if f.cfg.readAhead == 0 {
		return
	}
	window := f.ra.observe(off, n, f.bs, f.bs, f.cfg.readAhead)
	if window == 0 {
		return
	}
	cur := (off + n - 1) / f.bs
	from, to := cur+1, min(cur+int64(window), (f.size-1)/f.bs)
	if from > to {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return
	}
	var missing []int64
	for idx := from; idx <= to; idx++ {
		if _, ok := f.flights[idx]; !ok && !f.mem.contains(idx) {
			missing = append(missing, idx)
		}
	}
	if len(missing) == 0 || missing[0] != from && len(missing) < window/2 {
		return
	}
	for i := 0; i < len(missing); {
		j := i
		for j+1 < len(missing) && missing[j+1] == missing[j]+1 && int64(j+1-i) < f.raChunk {
			j++
		}
		select {
		case f.pslots <- struct{}{}:
		default:
			return
		}
		f.startRunLocked(missing[i], missing[j], true, 1)
		i = j + 1
	}
}
