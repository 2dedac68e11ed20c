package remote

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// retryPolicy says how often, and after how long, a failed request is
// asked again.
type retryPolicy struct {
	retries    int           // retries after the first attempt
	backoff    time.Duration // wait after the first failure, doubled after each
	maxBackoff time.Duration // cap on that doubling
	maxWait    time.Duration // cap on a server's Retry-After
}

// delay is the wait after the n-th consecutive failure (n >= 1): an
// exponential backoff with "equal jitter", half fixed and half random, so
// readers that failed together do not all come back at the same instant,
// yet none comes back at once.
func (p retryPolicy) delay(n int) time.Duration {
	d := p.backoff
	for i := 1; i < n && d < p.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.maxBackoff)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(half+1)
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an
// HTTP-date (RFC 9110, section 10.2.3). A date in the past means no wait.
// The result is never negative and never overflows; the caller caps it.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, ok := parseDigits(v); ok {
		const maxSeconds = 1 << 31 // far past any cap, far below overflow
		return time.Duration(min(n, maxSeconds)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryAfter reads a response's Retry-After, if it has a valid one.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
}

// retrying runs attempt until it succeeds, fails in a way asking again
// cannot cure, or has failed more than the policy's retries in a row. An
// attempt that made progress (delivered a block) resets the count, so a
// long transfer over a flaky link is not failed for the sum of its hiccups.
// Each retried failure is logged here, once; the final error is returned
// and left for the caller to report.
func (f *File) retrying(ctx context.Context, op string, attempt func() (progressed bool, err error)) error {
	failures := 0
	for {
		progressed, err := attempt()
		if err == nil {
			return nil
		}
		if progressed {
			failures = 0
		}
		var re *retryableError
		if !errors.As(err, &re) {
			return err
		}
		failures++
		if failures > f.cfg.policy.retries {
			return fmt.Errorf("%w after %d failed attempts: %w", ErrUnavailable, failures, re.err)
		}
		wait := f.cfg.policy.delay(failures)
		if re.hasAfter {
			wait = min(re.after, f.cfg.policy.maxWait)
		}
		f.stats.retries.Add(1)
		f.log.Warn().Str("url", f.name).Str("request", op).Int("failure", failures).
			Dur("retry_in_ms", wait).Str("error", re.err.Error()).Msg("remote request failed; retrying")
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
}
