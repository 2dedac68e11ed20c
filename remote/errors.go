package remote

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"
)

var (
	// ErrNoRanges means the server does not answer byte-range requests,
	// so the archive could only be read by downloading all of it: Open
	// refuses such a server instead.
	ErrNoRanges = errors.New("server does not support range requests")
	// ErrChanged means the remote file is no longer the one that was
	// opened (its validator or size changed). Once a File has seen it,
	// every later read fails with it too, so bytes of two versions are
	// never mixed.
	ErrChanged = errors.New("remote file changed since it was opened")
	// ErrUnavailable means a request kept failing with transient errors
	// (timeouts, dropped connections, 5xx, 429) until the retries ran out.
	// The error also wraps the last failure.
	ErrUnavailable = errors.New("server unavailable")
	// ErrNotFound means the server answered 404 or 410.
	ErrNotFound = errors.New("not found")
	// ErrAccessDenied means the server answered 401 or 403.
	ErrAccessDenied = errors.New("access denied")
	// ErrProtocol means the server's answer breaks HTTP's range rules (a
	// Content-Range that does not match the request, more bytes than
	// asked for, a compressed or multipart body). Such an answer is never
	// used, and not retried either: asking again would get the same.
	ErrProtocol = errors.New("invalid response from server")
	// ErrClosed is returned by reads of a closed File.
	ErrClosed = errors.New("remote file closed")
)

// StatusError is an HTTP status that ends a request. It matches
// ErrNotFound (404, 410) and ErrAccessDenied (401, 403) with errors.Is, so
// callers can tell the user what to do without knowing status codes.
type StatusError struct {
	Code int
	// Detail is what the server said about it, as Options.DescribeError
	// read it from the answer; nil without one. StatusError wraps it.
	Detail error
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Code, http.StatusText(e.Code))
	if e.Detail != nil {
		return e.Detail.Error() + " (" + s + ")"
	}
	switch {
	case errors.Is(e, ErrNotFound):
		return "not found (" + s + ")"
	case errors.Is(e, ErrAccessDenied):
		return "access denied (" + s + "; give credentials with --header or a netrc file)"
	}
	return s
}

func (e *StatusError) Unwrap() error { return e.Detail }

func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == http.StatusNotFound || e.Code == http.StatusGone
	case ErrAccessDenied:
		return e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden
	}
	return false
}

// timeoutError is a request that made no progress (no headers, or no body
// bytes) for the request timeout. It matches os.ErrDeadlineExceeded, the
// error the standard library uses for the same thing.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no progress for %v (request timeout)", e.d)
}
func (e *timeoutError) Timeout() bool        { return true }
func (e *timeoutError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

// retryableError marks a failure that asking again may cure. after is the
// server's Retry-After, when it sent one.
type retryableError struct {
	err      error
	after    time.Duration
	hasAfter bool
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

func retryable(err error) error { return &retryableError{err: err} }

// protocolf is an ErrProtocol with the details of what was wrong.
func protocolf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// changedf is an ErrChanged with the evidence.
func changedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrChanged}, args...)...)
}

// quoteHeader shows a header value taken from a server in an error or log
// line: as it is when it is plain printable ASCII, quoted otherwise, so
// control characters cannot forge output, and cut short, so a hostile
// server cannot flood the log.
func quoteHeader(s string) string {
	const max = 80
	cut := ""
	if len(s) > max {
		s, cut = s[:max], "…"
	}
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return strconv.Quote(s) + cut
		}
	}
	return s + cut
}
