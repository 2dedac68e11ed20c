package remote

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"99999999999", (1 << 31) * time.Second, true}, // capped, no overflow
		{"Wed, 01 May 2024 12:00:30 GMT", 30 * time.Second, true},
		{"Wednesday, 01-May-24 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Wed May  1 12:00:10 2024", 10 * time.Second, true},     // asctime
		{"Wed, 01 May 2024 11:00:00 GMT", 0, true},               // past: no wait
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	} {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("%q = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "Wed, 01 May 2024 12:00:30 GMT", "99999999999999999999", "-5", "Mon, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(s)
	}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || !ok && d != 0 {
			t.Fatalf("%q = %v, %v", s, d, ok)
		}
		if n, digits := parseDigits(strings.TrimSpace(s)); digits && d != time.Duration(min(n, 1<<31))*time.Second {
			t.Fatalf("%q = %v, want %d seconds", s, d, n)
		}
	})
}

// Backoff doubles from the first wait up to the cap, with at most half of
// each wait random.
func TestBackoffDelay(t *testing.T) {
	p := retryPolicy{backoff: 100 * time.Millisecond, maxBackoff: 800 * time.Millisecond}
	for n := 1; n <= 8; n++ {
		full := min(p.backoff<<(n-1), p.maxBackoff)
		for range 50 {
			if d := p.delay(n); d < full/2 || d > full {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", n, d, full/2, full)
			}
		}
	}
}

// Which HTTP statuses are worth asking again.
func TestStatusFailureClassification(t *testing.T) {
	for code, retry := range map[int]bool{
		400: false, 401: false, 403: false, 404: false, 405: false, 410: false, 412: false,
		408: true, 429: true, 500: true, 502: true, 503: true, 504: true, 599: true,
		501: false, 505: false,
	} {
		resp := &http.Response{StatusCode: code, Header: http.Header{"Retry-After": {"7"}}, Body: http.NoBody}
		err := (&File{}).statusFailure(resp)
		var re *retryableError
		if errors.As(err, &re) != retry {
			t.Errorf("HTTP %d: retryable %v, want %v", code, !retry, retry)
			continue
		}
		if retry && (!re.hasAfter || re.after != 7*time.Second) {
			t.Errorf("HTTP %d: Retry-After not taken: %+v", code, re)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Code != code {
			t.Errorf("HTTP %d: %v is not a StatusError for it", code, err)
		}
	}
}
