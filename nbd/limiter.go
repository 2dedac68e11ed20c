package nbd

import "sync"

// limiter bounds the requests one connection serves at once, by count and
// by payload bytes, so that a client pipelining requests (or not reading
// their replies) holds at most that much of the server. Only the
// connection's reader acquires, so waiting in acquire stops only it.
type limiter struct {
	mu       sync.Mutex
	cond     sync.Cond
	n, maxN  int
	bytes    int64
	maxBytes int64
}

func newLimiter(maxN int, maxBytes int64) *limiter {
	l := &limiter{maxN: maxN, maxBytes: maxBytes}
	l.cond.L = &l.mu
	return l
}

// acquire waits until a request of b payload bytes fits. One request
// always fits when none is in flight, whatever its size.
func (l *limiter) acquire(b int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.n >= l.maxN || (l.n > 0 && l.bytes+b > l.maxBytes) {
		l.cond.Wait()
	}
	l.n++
	l.bytes += b
}

func (l *limiter) release(b int64) {
	l.mu.Lock()
	l.n--
	l.bytes -= b
	l.mu.Unlock()
	l.cond.Broadcast()
}
