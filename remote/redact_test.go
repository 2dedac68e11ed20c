package remote

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.com/a/appliance.ova":                                         "https://example.com/a/appliance.ova",
		"https://alice:pa55@example.com:8443/a.ova":                                   "https://example.com:8443/a.ova",
		"https://bucket.s3.amazonaws.com/a.ova?X-Amz-Signature=abc&X-Amz-Expires=300": "https://bucket.s3.amazonaws.com/a.ova?REDACTED",
		"https://example.com/a.ova?":                                                  "https://example.com/a.ova?REDACTED",
		"https://example.com/a.ova#frag-secret":                                       "https://example.com/a.ova",
		"http://[::1]:8080/x%20y.ova?sig=1":                                           "http://[::1]:8080/x%20y.ova?REDACTED",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactURL(u); got != want {
			t.Errorf("redactURL(%s) = %s, want %s", in, got, want)
		}
	}
}

// The URL net/http puts in its errors is redacted too.
func TestRedactError(t *testing.T) {
	base := errors.New("connection reset")
	err := redactError(&url.Error{Op: "Get", URL: "https://u:pw@h/a.ova?sig=SECRET", Err: base})
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "pw") || !errors.Is(err, base) {
		t.Errorf("redactError: %v", err)
	}
}

func TestStatusErrorMatchesSentinels(t *testing.T) {
	for code, target := range map[int]error{404: ErrNotFound, 410: ErrNotFound, 401: ErrAccessDenied, 403: ErrAccessDenied} {
		err := error(&StatusError{Code: code})
		if !errors.Is(err, target) {
			t.Errorf("HTTP %d does not match %v", code, target)
		}
		if !strings.Contains(err.Error(), http.StatusText(code)) {
			t.Errorf("HTTP %d: %q", code, err)
		}
	}
	if err := error(&StatusError{Code: 500}); errors.Is(err, ErrNotFound) || errors.Is(err, ErrAccessDenied) {
		t.Errorf("HTTP 500 matches a 4xx sentinel")
	}
}

func TestQuoteHeader(t *testing.T) {
	for in, want := range map[string]string{
		`"abc"`:                 `"abc"`,
		"":                      `""`,
		"a\x1bb":                `"a\x1bb"`,
		strings.Repeat("x", 90): strings.Repeat("x", 80) + "…",
	} {
		if got := quoteHeader(in); got != want {
			t.Errorf("quoteHeader(%q) = %q, want %q", in, got, want)
		}
	}
}
