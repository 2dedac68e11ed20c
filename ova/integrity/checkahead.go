package integrity

import "sync/atomic"

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

// aheadState is a file's check-ahead bookkeeping.
type aheadState struct {
	last     atomic.Int64 // the last chunk of the latest request, plus one (0: none yet)
	inFlight atomic.Int32 // chunks being checked ahead now
	chunked  atomic.Bool  // the latest request was served whole chunks
}

// note records a request for chunks first to last, and reports whether it
// continues the previous one (it starts in the chunk where that one ended,
// or the next): such a reader is sequential, and is served whole chunks.
// reaches reports that it also reaches a chunk the previous one did not.
// The many small requests of a sequential reader inside one chunk cost an
// atomic swap each.
func (a *aheadState) note(first, last int) (continues, reaches bool) {
	prev := a.last.Swap(int64(last) + 1)
	continues = prev != 0 && (int64(first) == prev-1 || int64(first) == prev)
	return continues, continues && int64(last) >= prev
}

// served records how a request was served (whole chunks, or pieces) and
// reports whether the chunks after it are worth checking ahead: it
// continues the previous request, reaches a chunk that one did not, and
// that one was served whole chunks too. The last condition spares random
// readers: one whose read happens to fall in the chunk after its previous
// one (1 in 128 of 4 KiB reads over a 256 MiB disk) is served that chunk,
// but checking 8 MiB ahead for it cost a random read half again what its
// own pieces did (BenchmarkRandomRead4K: 38-46 us of CPU per 4 KiB read
// with it, 28-30 without). A sequential reader of small requests is served
// chunks from its second request on, and checked ahead from the next one
// that enters a new chunk; one of requests over randomReadMax is checked
// ahead from its second, as before.
func (a *aheadState) served(chunked, continues, reaches bool) (ahead bool) {
	was := a.chunked.Swap(chunked)
	return chunked && continues && reaches && was
}

// checkAhead starts checking the chunks after last, for a sequential
// reader (see note): random readers never pay for chunks they will not
// read. A chunk checked ahead lands in the recent-chunk cache, where the
// request that reaches it finds it, or joins its check while it is still
// running. A mismatch found ahead marks the file as a read would: the file
// is damaged, whichever reader finds it.
func (f *File) checkAhead(last int) {
	chunks := int((f.m.Size + ChunkSize - 1) / ChunkSize)
	for c := last + 1; c <= last+checkAheadChunks && c < chunks; c++ {
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
func (cc *chunkCache) holds(f *File, c int) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e := cc.entries[chunkKey{f, c}]
	return e != nil && e.fresh(nowNano())
}

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
