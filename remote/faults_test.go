package remote

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// A server that drops the connection mid-body: the request is retried
// from the byte where the body broke off, and the bytes are right.
func TestDroppedConnectionsAreRetried(t *testing.T) {
	data := testData(40*testBlock, 10)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.ReadAhead = -1
	f := mustOpen(t, srv.url(), opt)

	srv.setPlans(func(n int64, r *http.Request) plan {
		if n <= 3 { // the first two requests after Open break
			return plan{dropAfter: 10000}
		}
		return plan{}
	})
	readCheck(t, f, data, 3*testBlock, 2*testBlock)
	if st := f.Stats(); st.Retries != 2 {
		t.Errorf("Retries = %d, want 2", st.Retries)
	}
	seen := srv.seen()
	if got := seen[len(seen)-1].header.Get("Range"); got != "bytes=216608-327679" {
		t.Errorf("the last retry asked for %s, want the rest from where the body broke off (bytes=216608-327679)", got)
	}

	// Every answer breaks after 40000 bytes: each attempt still completes
	// a block now and then, so a long read gets through.
	srv.setPlans(func(int64, *http.Request) plan { return plan{dropAfter: 40000} })
	readCheck(t, f, data, 10*testBlock, 8*testBlock)
}

// A body shorter than its Content-Range (the server closes cleanly, too
// early) is a truncated answer: retried, never served short.
func TestTruncatedBodyIsRetried(t *testing.T) {
	data := testData(10*testBlock, 11)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), testOptions())
	srv.setPlans(func(n int64, r *http.Request) plan {
		if n != 2 {
			return plan{}
		}
		return plan{handler: func(w http.ResponseWriter, r *http.Request) {
			// No Content-Length: a chunked body that ends early.
			w.Header().Set("Content-Range", "bytes 131072-196607/655360")
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusPartialContent)
			w.(http.Flusher).Flush()
			w.Write(data[131072 : 131072+1000])
		}}
	})
	readCheck(t, f, data, 2*testBlock, testBlock)
	if st := f.Stats(); st.Retries != 1 {
		t.Errorf("Retries = %d, want 1", st.Retries)
	}
}

// 503 with Retry-After: 1 is retried after the second the server asked
// for, and the read succeeds.
func TestRetryAfter503(t *testing.T) {
	data := testData(10*testBlock, 12)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), testOptions())
	srv.setPlans(func(n int64, r *http.Request) plan {
		if n == 2 {
			return plan{status: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"1"}}}
		}
		return plan{}
	})
	start := time.Now()
	readCheck(t, f, data, 4*testBlock, 100)
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before the Retry-After of 1 s", d)
	}
	if st := f.Stats(); st.Retries != 1 || st.Requests != 3 {
		t.Errorf("%+v, want 1 retry and 3 requests", st)
	}
}

// 429 is retried too; a huge Retry-After is capped, not obeyed, and the
// log gives the wait with its unit.
func TestTooManyRequestsIsRetriedWithCappedWait(t *testing.T) {
	data := testData(10*testBlock, 13)
	srv := newTestServer(t, data)
	var logs logBuffer
	opt := testOptions()
	opt.Log = logs.logger()
	opt.maxRetryWait = 50 * time.Millisecond
	f := mustOpen(t, srv.url(), opt)
	srv.setPlans(func(n int64, r *http.Request) plan {
		if n == 2 || n == 3 {
			return plan{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"3600"}}}
		}
		return plan{}
	})
	start := time.Now()
	readCheck(t, f, data, 4*testBlock, 100)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v: Retry-After was not capped", d)
	}
	if st := f.Stats(); st.Retries != 2 {
		t.Errorf("Retries = %d, want 2", st.Retries)
	}
	if n := logs.count(`"retry_in_ms":50,`); n != 2 {
		t.Errorf("%d retry lines say retry_in_ms 50, want 2; log:\n%s", n, logs.String())
	}
}

// A server that keeps failing with 500: the read fails with
// ErrUnavailable after Retries retries, naming the last status.
func TestPersistent500Fails(t *testing.T) {
	data := testData(10*testBlock, 14)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.Retries = 2
	f := mustOpen(t, srv.url(), opt)
	srv.setPlans(func(int64, *http.Request) plan { return plan{status: http.StatusInternalServerError} })
	n, err := f.ReadAt(make([]byte, 100), 4*testBlock)
	if n != 0 || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ReadAt = %d, %v; want ErrUnavailable", n, err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 500 || !strings.Contains(err.Error(), "block 4") {
		t.Errorf("error %q: want the 500 and the block named", err)
	}
	if got := f.Stats().Requests; got != 1+3 {
		t.Errorf("%d requests, want Open's and 3 attempts", got)
	}
	// The File is not failed for good: the server recovers, reads work.
	srv.setPlans(nil)
	readCheck(t, f, data, 4*testBlock, 100)
}

// 4xx other than 408 and 429 are final: no retry.
func TestClientErrorsAreNotRetried(t *testing.T) {
	data := testData(10*testBlock, 15)
	for _, c := range []struct {
		status int
		target error
	}{
		{http.StatusForbidden, ErrAccessDenied},
		{http.StatusNotFound, ErrNotFound},
		{http.StatusBadRequest, nil},
	} {
		srv := newTestServer(t, data)
		f := mustOpen(t, srv.url(), testOptions())
		srv.setPlans(func(int64, *http.Request) plan { return plan{status: c.status} })
		_, err := f.ReadAt(make([]byte, 100), 4*testBlock)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != c.status || (c.target != nil && !errors.Is(err, c.target)) {
			t.Errorf("HTTP %d: %v", c.status, err)
		}
		if got := f.Stats().Requests; got != 2 {
			t.Errorf("HTTP %d: %d requests, want 2 (no retry)", c.status, got)
		}
	}
}

// Errors at Open say what is wrong in words a user can act on.
func TestOpenErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		target error
		words  string
	}{
		{http.StatusNotFound, ErrNotFound, "not found"},
		{http.StatusGone, ErrNotFound, "not found"},
		{http.StatusUnauthorized, ErrAccessDenied, "access denied (HTTP 401 Unauthorized; give credentials with --header or a netrc file)"},
		{http.StatusForbidden, ErrAccessDenied, "access denied"},
		{http.StatusMethodNotAllowed, nil, "HTTP 405 Method Not Allowed"},
	} {
		srv := newTestServer(t, nil)
		srv.setPlans(func(int64, *http.Request) plan { return plan{status: c.status} })
		f, err := Open(t.Context(), srv.url(), testOptions())
		if err == nil {
			f.Close()
			t.Fatalf("HTTP %d: Open succeeded", c.status)
		}
		if c.target != nil && !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.words) ||
			!strings.Contains(err.Error(), srv.url()) {
			t.Errorf("HTTP %d: %q, want %q and the URL", c.status, err, c.words)
		}
		if got := srv.requests.Load(); got != 1 {
			t.Errorf("HTTP %d: %d requests, want 1", c.status, got)
		}
	}
}

// A server that stalls mid-body: each attempt is abandoned after the
// request timeout, and after the retries the read fails with a timeout,
// in bounded time.
func TestStalledBodyTimesOut(t *testing.T) {
	data := testData(10*testBlock, 16)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.RequestTimeout = 200 * time.Millisecond
	opt.Retries = 2
	f := mustOpen(t, srv.url(), opt)
	srv.setPlans(func(int64, *http.Request) plan { return plan{stallAfter: 10000} })
	start := time.Now()
	_, err := f.ReadAt(make([]byte, 100), 4*testBlock)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadAt: %v, want ErrUnavailable from a timeout", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
	if got := f.Stats().Requests; got != 1+3 {
		t.Errorf("%d requests, want Open's and 3 attempts", got)
	}
	eventually(t, "the server to see the stalled requests cancelled", func() bool { return srv.cancelled.Load() == 3 })

	// A stall only once: the retry succeeds.
	srv.setPlans(func(n int64, r *http.Request) plan {
		if n == 5 {
			return plan{stallAfter: 10000}
		}
		return plan{}
	})
	readCheck(t, f, data, 4*testBlock, 100)
}

// A server that never sends headers times out the same way.
func TestStalledHeadersTimeOut(t *testing.T) {
	data := testData(10*testBlock, 17)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.RequestTimeout = 200 * time.Millisecond
	opt.Retries = 1
	srv.setPlans(func(int64, *http.Request) plan { return plan{stallHeaders: true} })
	start := time.Now()
	_, err := Open(t.Context(), srv.url(), opt)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Open: %v, want ErrUnavailable from a timeout", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}

// The timeout is on progress, not on the whole body: a body that keeps
// coming, slowly, takes longer than the timeout and is not cut.
func TestSlowButSteadyBodyIsNotTimedOut(t *testing.T) {
	data := testData(10*testBlock, 18)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.RequestTimeout = 300 * time.Millisecond
	opt.ReadAhead = -1
	f := mustOpen(t, srv.url(), opt)
	srv.setPlans(func(int64, *http.Request) plan { return plan{trickle: 25 * time.Millisecond} })
	start := time.Now()
	readCheck(t, f, data, 4*testBlock, testBlock) // 16 pieces: about 400 ms
	if d := time.Since(start); d < opt.RequestTimeout {
		t.Fatalf("the body took %v, no longer than the timeout: the test proves nothing", d)
	}
	if st := f.Stats(); st.Retries != 0 {
		t.Errorf("%d retries of a steady body", st.Retries)
	}
}

// A closed connection at Open is retried like any other.
func TestOpenIsRetried(t *testing.T) {
	data := testData(3*testBlock, 19)
	srv := newTestServer(t, data)
	srv.setPlans(func(n int64, r *http.Request) plan {
		switch n {
		case 1:
			return plan{dropAfter: 100}
		case 2:
			return plan{status: http.StatusBadGateway}
		}
		return plan{}
	})
	f := mustOpen(t, srv.url(), testOptions())
	readCheck(t, f, data, 0, len(data))
	if st := f.Stats(); st.Retries != 2 {
		t.Errorf("Retries = %d, want 2", st.Retries)
	}
}
