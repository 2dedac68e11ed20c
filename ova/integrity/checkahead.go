package integrity

import (
	"sync"
	"sync/atomic"
)

// checkAheadChunks is how many chunks past a sequential reader's request
// are checked before it asks for them. A checked read costs a read from
// the archive and a BLAKE3 per chunk, and without check-ahead the reader
// waits for both on every chunk it enters. Checking ahead moves that work
// to the other core while this one replies. The kernel's read-ahead gives
// the same overlap to page-cache reads, but a direct-I/O mount, or a
// reader that opens with O_DIRECT, sends one request at a time. Eight
// chunks (8 MiB) stay inside the recent-chunk cache, so a chunk checked
// ahead is still there when its reader arrives. Measured with dd bs=1M on
// a direct-I/O mount of the 2-core VM, four alternating runs each: 1537-
// 1631 MB/s with four chunks ahead, 1776-2228 with eight.
const checkAheadChunks = 8

// aheadWindow is how many chunks to check ahead of a sequential reader
// whose requests are n bytes: checkAheadChunks for requests of a chunk
// (dd bs=1M, the kernel's read-ahead), fewer for smaller ones, at least
// one. A disk decoder reading records of 20-40 KiB moves through a chunk
// in dozens of requests, so eight chunks ahead were checked long before
// it came, if ever (it jumps when its own reader does), and pushed the
// chunks it was reading out of the recent-chunk cache, to be checked
// again: reading 50,000 guest files, the daemon checked each chunk of
// the member about five times, a sixth of its CPU.
func aheadWindow(n int) int {
	return min(checkAheadChunks, max(1, (n*checkAheadChunks+ChunkSize-1)/ChunkSize))
}

// aheadState is a file's check-ahead bookkeeping, and what tells a
// sequential reader from a random one.
type aheadState struct {
	mu        sync.Mutex
	lastChunk int  // the latest request's last chunk, plus one (0: none yet)
	streak    int  // requests in a row that continued the one before
	chunked   bool // the latest request was served whole chunks

	inFlight atomic.Int32 // chunks being checked ahead now
}

// note records a request for chunks first to last, and reports whether its
// reader is sequential: this request and the one before it each continued
// their predecessor (started in the chunk where it ended, or the next).
// Continuing by chunk, not by byte, keeps a sequential reader sequential
// when its requests arrive a little out of order (the kernel's read-ahead,
// a disk's units decoded ahead on several goroutines). One continuation is
// no proof: a disk decoder reads a record in two pieces, one right after
// the other, and a unit decoded whole after its head was served reads its
// record again; neither is a sequential reader worth whole chunks. reaches
// reports that the request also reaches a chunk the previous one did not.
func (a *aheadState) note(first, last int) (sequential, reaches bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prev := a.lastChunk
	continues := prev != 0 && (first == prev-1 || first == prev)
	if continues {
		a.streak++
	} else {
		a.streak = 0
	}
	a.lastChunk = last + 1
	return a.streak >= 2, continues && last >= prev
}

// served records how a request was served (whole chunks, or pieces) and
// reports whether the chunks after it are worth checking ahead: its
// reader is sequential, it reaches a chunk the previous request did not,
// and that one was served whole chunks too.
func (a *aheadState) served(chunked, sequential, reaches bool) (ahead bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.chunked
	a.chunked = chunked
	return chunked && sequential && reaches && was
}

// checkAhead starts checking the chunks after last, for a sequential
// reader (see note): random readers never pay for chunks they will not
// read. A chunk checked ahead lands in the recent-chunk cache, where the
// request that reaches it finds it, or joins its check while it is still
// running. A mismatch found ahead marks the file as a read would: the file
// is damaged, whichever reader finds it.
func (f *File) checkAhead(last, window int) {
	chunks := int((f.m.Size + ChunkSize - 1) / ChunkSize)
	for c := last + 1; c <= last+window && c < chunks; c++ {
		if recent.holds(f, c) {
			continue
		}
		if f.ahead.inFlight.Add(1) > checkAheadChunks {
			f.ahead.inFlight.Add(-1)
			return
		}
		go func() {
			defer f.ahead.inFlight.Add(-1)
			if e, err := f.checkedChunk(c); err == nil {
				recent.release(e)
			}
		}()
	}
}

// holds reports whether chunk c of f is in the cache, checked within the
// last second or being checked now, so that get would not check it again.
func (cc *chunkCache) holds(f *File, c int) bool { return cc.holdsAny(f, c, c) }

// holdsAny reports whether the cache holds any of chunks first to last of
// f (see holds).
func (cc *chunkCache) holdsAny(f *File, first, last int) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	now := nowNano()
	for c := first; c <= last; c++ {
		if e := cc.entries[chunkKey{f, c}]; e != nil && e.fresh(now) {
			return true
		}
	}
	return false
}
