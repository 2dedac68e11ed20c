package remote

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// Sign runs on every attempt, a retry's too, after Range and the
// conditions are set, so a signature can cover them; what it sets is sent.
func TestSignRunsOnEveryAttempt(t *testing.T) {
	data := testData(8*testBlock, 21)
	srv := newTestServer(t, data)
	srv.setPlans(func(n int64, r *http.Request) plan {
		if n == 2 || n == 3 {
			return plan{status: http.StatusServiceUnavailable}
		}
		return plan{}
	})
	var calls atomic.Int64
	opt := testOptions()
	opt.ReadAhead = -1
	opt.Sign = func(r *http.Request) error {
		n := calls.Add(1)
		if r.Header.Get("Range") == "" {
			return errors.New("signed before the Range was set")
		}
		r.Header.Set("Authorization", fmt.Sprintf("Sig attempt=%d if-match=%s", n, r.Header.Get("If-Match")))
		return nil
	}
	f := mustOpen(t, srv.url(), opt)
	readCheck(t, f, data, 2*testBlock, testBlock)
	seen := srv.seen()
	if len(seen) != 4 || calls.Load() != 4 {
		t.Fatalf("%d requests, %d signatures; want 4 of each (Open, two failures, the success)", len(seen), calls.Load())
	}
	for i, s := range seen {
		want := fmt.Sprintf("Sig attempt=%d", i+1)
		if got := s.header.Get("Authorization"); !strings.HasPrefix(got, want) {
			t.Errorf("request %d: Authorization %q, want %q...", i+1, got, want)
		}
	}
	if got := seen[3].header.Get("Authorization"); !strings.HasSuffix(got, `if-match="v1"`) {
		t.Errorf("the retry's signature did not see If-Match: %q", got)
	}
}

// A Sign error fails the request at once, without a retry, and says so.
func TestSignErrorIsFinal(t *testing.T) {
	srv := newTestServer(t, testData(testBlock, 22))
	opt := testOptions()
	errNoKey := errors.New("no key")
	opt.Sign = func(*http.Request) error { return errNoKey }
	_, err := Open(t.Context(), srv.url(), opt)
	if !errors.Is(err, errNoKey) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open: %v; want the Sign error, not retried", err)
	}
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("%d requests sent without a signature", n)
	}
}

// DescribeError sees the error body and status; its error is wrapped in
// the StatusError, named in its text, and the status still decides
// retries and remote's own sentinels.
func TestDescribeError(t *testing.T) {
	errSentinel := errors.New("sentinel")
	srv := newTestServer(t, testData(testBlock, 23))
	srv.setPlans(func(n int64, r *http.Request) plan {
		return plan{handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("<Error><Code>NoSuchKey</Code></Error>" + strings.Repeat(" ", 8<<10)))
		}}
	})
	opt := testOptions()
	var gotBody int
	opt.DescribeError = func(status int, h http.Header, body []byte) error {
		gotBody = len(body)
		if status != 404 || !strings.Contains(string(body), "NoSuchKey") {
			return nil
		}
		return fmt.Errorf("%w: the key is not there", errSentinel)
	}
	_, err := Open(t.Context(), srv.url(), opt)
	if !errors.Is(err, errSentinel) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open: %v; want the described error, also ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "the key is not there (HTTP 404 Not Found)") {
		t.Errorf("error %q does not give the description and the status", err)
	}
	if gotBody != 4<<10 {
		t.Errorf("DescribeError got %d bytes of body, want the first 4 KiB", gotBody)
	}
}

// Name replaces the URL in errors, logs and URL(); Identity keeps the URL.
func TestName(t *testing.T) {
	srv := newTestServer(t, testData(2*testBlock, 24))
	opt := testOptions()
	opt.Name = "s3://bucket/key"
	f := mustOpen(t, srv.url(), opt)
	if f.URL() != "s3://bucket/key" {
		t.Errorf("URL() = %q", f.URL())
	}
	if id := string(f.Identity()); !strings.Contains(id, srv.url()) {
		t.Errorf("Identity %q does not key on the URL", id)
	}
	srv.setPlans(func(int64, *http.Request) plan { return plan{status: http.StatusForbidden} })
	_, err := f.ReadAt(make([]byte, 10), testBlock)
	if err == nil || !strings.Contains(err.Error(), "s3://bucket/key") || strings.Contains(err.Error(), srv.URL) {
		t.Errorf("read error %v does not name the file by its Name alone", err)
	}
}
