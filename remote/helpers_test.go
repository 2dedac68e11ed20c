package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const testBlock = 64 << 10

// testData is n deterministic pseudo-random bytes.
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// plan is what the test server does with one request. The zero plan
// serves the file properly.
type plan struct {
	handler       http.HandlerFunc // answers instead of the file server
	status        int              // answer with this status and no body
	header        http.Header      // added to the answer
	gate          chan struct{}    // wait for this to close (or the client to go) before answering
	stallHeaders  bool             // never answer: wait for the client to go
	ignoreRange   bool             // serve the whole file whatever Range says
	ignoreIfMatch bool             // let If-Range decide alone
	ignoreIfRange bool             // ignore If-Range and If-Match: serve bytes of whatever is there
	dropAfter     int64            // cut the connection after this many body bytes (0: never)
	stallAfter    int64            // stop sending after this many body bytes until the client goes (0: never)
	trickle       time.Duration    // send the body in 4 KiB pieces with this pause between them
	content       io.ReadSeeker    // serve this instead of the file's bytes
}

// seen is what the server recorded of a request.
type seen struct {
	path   string
	header http.Header
}

// testServer serves a file with http.ServeContent (so Range, If-Range,
// If-Match, ETag and Last-Modified behave as in a real server), with
// faults injected per request by a plan.
type testServer struct {
	*httptest.Server
	stop chan struct{} // closed at cleanup: ends every stalled handler

	mu      sync.Mutex
	data    []byte
	etag    string
	modTime time.Time
	plans   func(n int64, r *http.Request) plan
	log     []seen

	requests  atomic.Int64 // requests that reached the handler
	finished  atomic.Int64 // handlers that returned
	cancelled atomic.Int64 // handlers that saw their client go away
	written   atomic.Int64 // body bytes written
	conns     atomic.Int64 // connections accepted
	active    atomic.Int64 // handlers running now
	maxActive atomic.Int64 // the most handlers that ever ran at once
}

func newTestServer(t *testing.T, data []byte) *testServer {
	s := &testServer{
		stop:    make(chan struct{}),
		data:    data,
		etag:    `"v1"`,
		modTime: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	s.Server = httptest.NewUnstartedServer(s)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Server.Close)
	t.Cleanup(func() { close(s.stop) })
	return s
}

func (s *testServer) url() string { return s.URL + "/appliance.ova" }

// setPlans installs the fault plan; n counts every request, from 1.
func (s *testServer) setPlans(p func(n int64, r *http.Request) plan) {
	s.mu.Lock()
	s.plans = p
	s.mu.Unlock()
}

// change replaces the file, with a new ETag (none if "") and mtime.
func (s *testServer) change(data []byte, etag string, mod time.Time) {
	s.mu.Lock()
	s.data, s.etag, s.modTime = data, etag, mod
	s.mu.Unlock()
}

func (s *testServer) seen() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.log...)
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	defer s.finished.Add(1)
	a := s.active.Add(1)
	defer s.active.Add(-1)
	for m := s.maxActive.Load(); a > m && !s.maxActive.CompareAndSwap(m, a); m = s.maxActive.Load() {
	}
	s.mu.Lock()
	data, etag, mod, plans := s.data, s.etag, s.modTime, s.plans
	s.log = append(s.log, seen{r.URL.Path, r.Header.Clone()})
	s.mu.Unlock()
	var p plan
	if plans != nil {
		p = plans(n, r)
	}
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-r.Context().Done():
			s.cancelled.Add(1)
			return
		case <-s.stop:
			return
		}
	}
	if p.stallHeaders {
		select {
		case <-r.Context().Done():
			s.cancelled.Add(1)
		case <-s.stop:
		}
		return
	}
	for k, vs := range p.header {
		w.Header()[k] = vs
	}
	if p.handler != nil {
		p.handler(w, r)
		return
	}
	if p.status != 0 {
		w.WriteHeader(p.status)
		return
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if p.ignoreRange {
		r.Header.Del("Range")
	}
	if p.ignoreIfMatch || p.ignoreIfRange {
		r.Header.Del("If-Match")
	}
	if p.ignoreIfRange {
		r.Header.Del("If-Range")
	}
	var content io.ReadSeeker = bytes.NewReader(data)
	if p.content != nil {
		content = p.content
	}
	fw := &faultWriter{ResponseWriter: w, s: s, p: p, ctx: r.Context()}
	http.ServeContent(fw, r, "", mod, content)
}

// faultWriter passes a response body on, cutting, stalling or slowing it
// as the plan says.
type faultWriter struct {
	http.ResponseWriter
	s       *testServer
	p       plan
	ctx     context.Context
	written int64
}

func (w *faultWriter) Write(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		chunk := b
		if w.p.trickle > 0 && len(chunk) > 4096 {
			chunk = chunk[:4096]
		}
		limit := int64(-1)
		if w.p.dropAfter > 0 {
			limit = w.p.dropAfter
		}
		if w.p.stallAfter > 0 && (limit < 0 || w.p.stallAfter < limit) {
			limit = w.p.stallAfter
		}
		if limit >= 0 && w.written+int64(len(chunk)) >= limit {
			chunk = chunk[:limit-w.written]
			n, _ := w.ResponseWriter.Write(chunk)
			w.s.written.Add(int64(n))
			w.ResponseWriter.(http.Flusher).Flush()
			if w.p.stallAfter > 0 && limit == w.p.stallAfter {
				select {
				case <-w.ctx.Done():
					w.s.cancelled.Add(1)
				case <-w.s.stop:
				}
			}
			panic(http.ErrAbortHandler) // the connection is cut
		}
		n, err := w.ResponseWriter.Write(chunk)
		w.written += int64(n)
		w.s.written.Add(int64(n))
		total += n
		if err != nil {
			return total, err
		}
		b = b[len(chunk):]
		if w.p.trickle > 0 {
			w.ResponseWriter.(http.Flusher).Flush()
			time.Sleep(w.p.trickle)
		}
	}
	return total, nil
}

// zeros is a large file of zero bytes that costs no memory.
type zeros struct{}

func (zeros) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

// testOptions are fast options for tests: small blocks, millisecond
// backoff, short enough timeouts.
func testOptions() Options {
	return Options{
		BlockSize:      testBlock,
		RequestTimeout: 5 * time.Second,
		Retries:        3,
		backoff:        time.Millisecond,
	}
}

func mustOpen(t *testing.T, rawURL string, opt Options) *File {
	t.Helper()
	f, err := Open(context.Background(), rawURL, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readCheck reads n bytes at off and compares them with want.
func readCheck(t *testing.T, f *File, want []byte, off int64, n int) {
	t.Helper()
	if err := checkRead(f, want, off, n); err != nil {
		t.Fatal(err)
	}
}

// checkRead is readCheck for goroutines other than the test's.
func checkRead(f *File, want []byte, off int64, n int) error {
	p := make([]byte, n)
	got, err := f.ReadAt(p, off)
	wantN := max(0, min(n, len(want)-int(off)))
	switch {
	case got != wantN:
		return fmt.Errorf("ReadAt(%d bytes at %d) = %d bytes, %v; want %d", n, off, got, err, wantN)
	case wantN < n && err != io.EOF:
		return fmt.Errorf("ReadAt(%d bytes at %d) short read with %v, want io.EOF", n, off, err)
	case wantN == n && err != nil:
		return fmt.Errorf("ReadAt(%d bytes at %d): %v", n, off, err)
	case !bytes.Equal(p[:got], want[off:off+int64(got)]):
		return fmt.Errorf("ReadAt(%d bytes at %d): wrong bytes", n, off)
	}
	return nil
}

// eventually polls cond until it holds, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logBuffer collects log output from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count counts the log lines that contain s.
func (b *logBuffer) count(s string) int {
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func (b *logBuffer) logger() zerolog.Logger {
	return zerolog.New(b).Level(zerolog.DebugLevel)
}

// cached reports whether block idx is in memory.
func (f *File) cached(idx int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mem.contains(idx)
}

// memBlocks is how many blocks are in memory.
func (f *File) memBlocks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mem.len()
}

// inFlight reports how many blocks are being fetched.
func (f *File) inFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.flights)
}
