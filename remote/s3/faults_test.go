package s3

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/versitygw"
	"github.com/ovfmount/ovfmount/remote"
)

// fault is what the proxy does to one GET of the object.
type fault struct {
	slowDown   bool  // answer 503 SlowDown with S3's XML body, without asking the server
	dropAfter  int64 // cut the connection after this many body bytes
	stallAfter int64 // stop sending after this many body bytes, until the client gives up
	// latency delays the answer, and rate (bytes a second) paces its
	// body: a far server, as S3 is from most clients.
	latency time.Duration
	rate    int64
}

// faultProxy stands between the client and versitygw, forwarding every
// request as it came (the Host header too, or SigV4 would not validate)
// and injecting faults into the GETs of the object, counted from 1
// (Open's is the first).
type faultProxy struct {
	*httptest.Server
	target *url.URL
	stop   chan struct{}

	mu        sync.Mutex
	plan      func(n int64) fault
	hostOK    bool // every forwarded Host equalled the one the client sent
	gets      atomic.Int64
	forwarded atomic.Int64
}

func newFaultProxy(t *testing.T, s *versitygw.Server) *faultProxy {
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{target: target, stop: make(chan struct{}), hostOK: true}
	p.Server = httptest.NewUnstartedServer(p)
	p.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.Start()
	t.Cleanup(p.Close)
	t.Cleanup(func() { close(p.stop) })
	return p
}

func (p *faultProxy) setPlan(plan func(n int64) fault) {
	p.mu.Lock()
	p.plan = plan
	p.mu.Unlock()
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var f fault
	if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
		n := p.gets.Add(1)
		p.mu.Lock()
		if p.plan != nil {
			f = p.plan(n)
		}
		p.mu.Unlock()
	}
	if f.latency > 0 {
		time.Sleep(f.latency)
	}
	if f.slowDown {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>`)
		return
	}
	inHost := r.Host
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.target)
			// SetURL sets the Host to the target's; the client signed
			// the proxy's, which the server must see.
			pr.Out.Host = pr.In.Host
		},
		Transport: &hostCheck{p: p, want: inHost},
		ModifyResponse: func(resp *http.Response) error {
			switch {
			case f.dropAfter > 0:
				resp.Body = &faultyBody{body: resp.Body, left: f.dropAfter}
			case f.stallAfter > 0:
				resp.Body = &faultyBody{body: resp.Body, left: f.stallAfter, stall: r.Context().Done(), stop: p.stop}
			case f.rate > 0:
				resp.Body = &pacedBody{body: resp.Body, rate: f.rate, start: time.Now()}
			}
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	rp.ServeHTTP(w, r)
}

// hostCheck records whether the request leaving the proxy carries the
// Host the client sent.
type hostCheck struct {
	p    *faultProxy
	want string
}

func (h *hostCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	h.p.forwarded.Add(1)
	if r.Host != h.want {
		h.p.mu.Lock()
		h.p.hostOK = false
		h.p.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// faultyBody passes left bytes on, then breaks (the proxy then cuts the
// connection) or stalls until the client goes away.
type faultyBody struct {
	body  io.ReadCloser
	left  int64
	stall <-chan struct{}
	stop  <-chan struct{}
}

func (b *faultyBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		if b.stall != nil {
			select {
			case <-b.stall:
			case <-b.stop:
			}
		}
		return 0, errors.New("injected fault")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *faultyBody) Close() error { return b.body.Close() }

// pacedBody passes a body on at rate bytes a second.
type pacedBody struct {
	body  io.ReadCloser
	rate  int64
	start time.Time
	sent  int64
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	n, err := b.body.Read(p)
	b.sent += int64(n)
	due := b.start.Add(time.Duration(b.sent * int64(time.Second) / b.rate))
	time.Sleep(time.Until(due))
	return n, err
}

func (b *pacedBody) Close() error { return b.body.Close() }

// startProxied is versitygw behind a fault proxy, with one object.
func startProxied(t *testing.T, size int) (*versitygw.Server, *faultProxy, []byte) {
	s := startS3(t)
	data := testData(size, 20)
	put(t, s, "faults.ova", data)
	return s, newFaultProxy(t, s), data
}

// The proxy forwards the Host header unchanged: SigV4 validates through
// it, and a proxy that rewrote the Host would fail the signature.
func TestProxyKeepsHost(t *testing.T) {
	s, p, data := startProxied(t, 300000)
	f := mustOpen(t, "s3://"+testBucket+"/faults.ova", testOptions(p.URL))
	readCheck(t, f, data, 0, len(data))
	if !p.hostOK || p.forwarded.Load() == 0 {
		t.Fatalf("the proxy forwarded %d requests, Host unchanged: %v", p.forwarded.Load(), p.hostOK)
	}

	// The check has teeth: the same proxy, rewriting the Host, breaks
	// the signature.
	target, _ := url.Parse(s.Endpoint)
	bad := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ErrorLog: log.New(io.Discard, "", 0)})
	defer bad.Close()
	_, err := Open(context.Background(), "s3://"+testBucket+"/faults.ova", testOptions(bad.URL))
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("through a Host-rewriting proxy: %v, want SignatureDoesNotMatch", err)
	}
}

// Bursts of 503 SlowDown are retried with backoff, by remote alone, and
// the reads succeed with the right bytes.
func TestSlowDownIsRetried(t *testing.T) {
	_, p, data := startProxied(t, 1<<20)
	var logs logBuffer
	opt := testOptions(p.URL)
	opt.ReadAhead = -1
	opt.Log = logs.logger()
	p.setPlan(func(n int64) fault { return fault{slowDown: n == 1 || n == 2} }) // Open's first two tries
	f := mustOpen(t, "s3://"+testBucket+"/faults.ova", opt)
	p.setPlan(func(n int64) fault { return fault{slowDown: n >= 4 && n <= 6} }) // a burst of three
	readCheck(t, f, data, 5*remote.MinBlockSize, 2*remote.MinBlockSize)
	st := f.Stats()
	if st.Retries != 5 {
		t.Errorf("Retries = %d, want 5 (2 at Open, 3 at the read)", st.Retries)
	}
	if got := p.gets.Load(); got != 7 {
		t.Errorf("%d GETs reached the proxy, want 7: the SDK must not retry them too", got)
	}
	if !strings.Contains(logs.String(), "S3 SlowDown: Please reduce your request rate.") {
		t.Errorf("the retries' log does not name S3's error:\n%s", logs.String())
	}

	// Past the retries, the read fails with ErrUnavailable, naming SlowDown.
	p.setPlan(func(int64) fault { return fault{slowDown: true} })
	opt.Retries = 1
	g := mustOpenAfter(t, p, opt, data)
	_, err := g.ReadAt(make([]byte, 10), 9*remote.MinBlockSize)
	if !errors.Is(err, remote.ErrUnavailable) || !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("endless SlowDown: %v, want ErrUnavailable naming SlowDown", err)
	}
}

// mustOpenAfter opens the object with no fault at Open, then restores
// the plan.
func mustOpenAfter(t *testing.T, p *faultProxy, opt Options, data []byte) *remote.File {
	p.mu.Lock()
	plan := p.plan
	p.plan = nil
	p.mu.Unlock()
	f := mustOpen(t, "s3://"+testBucket+"/faults.ova", opt)
	readCheck(t, f, data, 0, 10)
	p.setPlan(plan)
	return f
}

// Connections dropped mid-body are retried from where they broke off, and
// the bytes are exact.
func TestDroppedBodiesAreRetried(t *testing.T) {
	_, p, data := startProxied(t, 2<<20)
	opt := testOptions(p.URL)
	f := mustOpenAfter(t, p, opt, data)
	p.setPlan(func(n int64) fault { return fault{dropAfter: 100000 + n*1000} })
	readCheck(t, f, data, 0, len(data))
	if st := f.Stats(); st.Retries == 0 {
		t.Error("no retries counted")
	}
}

// A stall longer than RequestTimeout abandons the request and retries
// it; when every try stalls, the read fails with ErrUnavailable in
// bounded time, never hangs.
func TestStallIsAbandoned(t *testing.T) {
	_, p, data := startProxied(t, 1<<20)
	opt := testOptions(p.URL)
	opt.RequestTimeout = 300 * time.Millisecond
	opt.ReadAhead = -1
	f := mustOpenAfter(t, p, opt, data)
	first := p.gets.Load() + 1
	p.setPlan(func(n int64) fault {
		if n == first {
			return fault{stallAfter: 5000}
		}
		return fault{}
	})
	start := time.Now()
	readCheck(t, f, data, 3*remote.MinBlockSize, 3*remote.MinBlockSize)
	if st := f.Stats(); st.Retries != 1 {
		t.Errorf("Retries = %d, want 1", st.Retries)
	}
	t.Logf("a read with one stalled request took %v", time.Since(start).Round(time.Millisecond))

	opt.Retries = 2
	g := mustOpenAfter(t, p, opt, data)
	p.setPlan(func(int64) fault { return fault{stallAfter: 1} })
	start = time.Now()
	_, err := g.ReadAt(make([]byte, 10), 10*remote.MinBlockSize)
	took := time.Since(start)
	if !errors.Is(err, remote.ErrUnavailable) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("every try stalls: %v, want ErrUnavailable after request timeouts", err)
	}
	if took > 10*time.Second {
		t.Errorf("the failing read took %v", took)
	}
	t.Logf("every try stalls: failed after %v: %v", took.Round(time.Millisecond), err)
}
