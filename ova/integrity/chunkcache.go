package integrity

import (
	"sync"

	"github.com/ovfmount/ovfmount/internal/offheap"
)

// recent keeps recently verified chunks for a second, so that sequential
// readers that ask for one chunk in parts (a disk decoder reading grain
// after grain, or the kernel's read-ahead requests, which straddle chunks)
// check it once, and random reads that land in it check nothing more,
// while a chunk damaged on disk after it was read is caught within a
// second. It holds at most recentChunks chunks (recentChunks MiB), plus
// those readers are still copying from.
//
// 16, not more or fewer: the kernel's ext4 reading a VMDK view through a
// loop device (several decoders and read-ahead requests at once, in
// different places of the member) took 10–15% longer with 8, as chunks
// left the set before their neighbours' reads came and were checked
// again, and no less time with 32 (medians 9.43 s with 16 against 9.46
// with 32, alternating); each chunk more is 1 MiB more resident.
var recent = &chunkCache{entries: map[chunkKey]*cachedChunk{}}

const (
	recentChunks = 16
	recentLife   = int64(1e9) // nanoseconds
)

// chunkBufs recycles chunk buffers: a fresh 1 MiB buffer per chunk costs
// as much in zeroing and garbage collection as a fifth of its hashing.
// They live outside the Go heap (see package offheap), where the recent
// chunks cost what they hold instead of twice that.
var chunkBufs = offheap.ClassOf(ChunkSize)

func getChunkBuf(n int) []byte { return chunkBufs.Get()[:n] }

func putChunkBuf(b []byte) { chunkBufs.Put(b[:ChunkSize]) }

type chunkKey struct {
	f *File
	c int
}

type chunkCache struct {
	mu      sync.Mutex
	entries map[chunkKey]*cachedChunk // the current entry of each chunk
	order   []*cachedChunk            // every entry the cache holds, oldest first
}

// A cachedChunk's buffer goes back to chunkBufs when its last holder lets
// go: the cache, while the entry is in order, and each reader between get
// and release.
type cachedChunk struct {
	key  chunkKey
	done chan struct{}
	data []byte
	err  error
	at   int64
	refs int // guarded by chunkCache.mu
}

// get returns the entry of chunk c of f, checking the chunk with load
// unless it was checked within the last second or is being checked now.
// load returns a buffer from getChunkBuf. On success the caller owns a
// reference and must release it once it has copied the data.
func (cc *chunkCache) get(f *File, c int, load func() ([]byte, error)) (*cachedChunk, error) {
	key := chunkKey{f, c}
	now := nowNano()
	cc.mu.Lock()
	if e := cc.entries[key]; e != nil && e.fresh(now) {
		e.refs++
		cc.mu.Unlock()
		<-e.done
		if e.err != nil {
			cc.release(e)
			return nil, e.err
		}
		return e, nil
	}
	e := &cachedChunk{key: key, done: make(chan struct{}), refs: 2}
	cc.entries[key] = e
	cc.order = append(cc.order, e)
	for len(cc.order) > recentChunks {
		old := cc.order[0]
		cc.order = cc.order[1:]
		if cc.entries[old.key] == old {
			delete(cc.entries, old.key)
		}
		cc.unref(old)
	}
	cc.mu.Unlock()

	data, err := load()
	cc.mu.Lock()
	e.data, e.err, e.at = data, err, nowNano()
	if err != nil && cc.entries[key] == e {
		delete(cc.entries, key) // a failure is not remembered
	}
	cc.mu.Unlock()
	close(e.done)
	if err != nil {
		cc.release(e)
		return nil, err
	}
	return e, nil
}

// fresh reports whether get may hand out e rather than check the chunk
// again: it is being checked, or was checked within recentLife. cc.mu is
// held.
func (e *cachedChunk) fresh(now int64) bool { return e.at == 0 || now-e.at < recentLife }

// release drops a reference that get returned.
func (cc *chunkCache) release(e *cachedChunk) {
	cc.mu.Lock()
	cc.unref(e)
	cc.mu.Unlock()
}

// unref drops one reference, with cc.mu held.
func (cc *chunkCache) unref(e *cachedChunk) {
	if e.refs--; e.refs == 0 && e.data != nil {
		putChunkBuf(e.data)
		e.data = nil
	}
}
