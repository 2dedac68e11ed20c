package remote

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The remote file changes while it is open. Whatever the server does about
// it (412 for If-Match, a whole 200 body for If-Range, a 206 of the new
// bytes with a new ETag, or only a new size), the read fails with
// ErrChanged, the File stays failed (cached blocks included), and the
// change is logged once.
func TestChangedFileFailsForGood(t *testing.T) {
	old := testData(20*testBlock, 20)
	newer := testData(20*testBlock, 21)
	mod1 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	mod2 := mod1.Add(time.Hour)
	for _, c := range []struct {
		name      string
		etag      string // "" for a server that sends none
		noModTime bool
		newData   []byte
		newEtag   string
		newMod    time.Time
		plan      plan
		wantIf    string // the If-Range requests carry
		wantMsg   string // evidence the error gives
	}{
		{"ETag, If-Match answered 412", `"v1"`, false, newer, `"v2"`, mod2, plan{}, `"v1"`, "refused If-Match"},
		{"ETag, If-Range answered 200", `"v1"`, false, newer, `"v2"`, mod2, plan{ignoreIfMatch: true}, `"v1"`, `ETag was "v1" and is now "v2"`},
		{"If-Range answered 200 without validators", `"v1"`, false, newer, `"v2"`, mod2, plan{handler: wholeFile(newer)}, `"v1"`, "whole file"},
		{"ETag, conditions ignored, new ETag on 206", `"v1"`, false, newer, `"v2"`, mod2, plan{ignoreIfRange: true}, `"v1"`, "ETag was"},
		{"Last-Modified only", "", false, newer, "", mod2, plan{}, "Wed, 01 May 2024 12:00:00 GMT", "last modified 2024-05-01T12:00:00Z and now 2024-05-01T13:00:00Z"},
		{"Last-Modified only, If-Range ignored", "", false, newer, "", mod2, plan{ignoreIfRange: true}, "Wed, 01 May 2024 12:00:00 GMT", "last modified"},
		{"same ETag, new size", `"v1"`, false, old[:19*testBlock], `"v1"`, mod1, plan{ignoreIfRange: true}, `"v1"`, "size was 1310720 bytes and is now 1245184"},
		{"same ETag, shrunk below the read", `"v1"`, false, old[:5*testBlock], `"v1"`, mod1, plan{}, `"v1"`, "no longer there (HTTP 416"},
		{"no validator, new size", "", true, old[:19*testBlock], "", time.Time{}, plan{}, "", "size was"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newTestServer(t, old)
			mod := mod1
			if c.noModTime {
				mod = time.Time{}
			}
			srv.change(old, c.etag, mod)
			var logs logBuffer
			opt := testOptions()
			opt.ReadAhead = -1
			opt.Log = logs.logger()
			f := mustOpen(t, srv.url(), opt)
			readCheck(t, f, old, 2*testBlock, 100)
			if got := srv.seen()[1].header.Get("If-Range"); got != c.wantIf {
				t.Errorf("If-Range %q, want %q", got, c.wantIf)
			}

			srv.change(c.newData, c.newEtag, c.newMod)
			srv.setPlans(func(int64, *http.Request) plan { return c.plan })
			n, err := f.ReadAt(make([]byte, 100), 10*testBlock)
			if n != 0 || !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("ReadAt after the change = %d, %v; want ErrChanged with %q", n, err, c.wantMsg)
			}
			if _, err := f.ReadAt(make([]byte, 100), 2*testBlock); !errors.Is(err, ErrChanged) {
				t.Fatalf("ReadAt of a cached block after the change: %v, want ErrChanged", err)
			}
			if _, err := f.ReadAt(make([]byte, 100), 11*testBlock); !errors.Is(err, ErrChanged) {
				t.Fatalf("a later ReadAt: %v, want ErrChanged", err)
			}
			if got := f.Stats().Retries; got != 0 {
				t.Errorf("a change was retried %d times", got)
			}
			if got := logs.count("remote file changed"); got != 1 {
				t.Errorf("the change was logged %d times, want once:\n%s", got, logs.String())
			}
			if c.noModTime && logs.count("no ETag or Last-Modified") != 1 {
				t.Errorf("no warning at Open that changes can only be seen by size:\n%s", logs.String())
			}
			if !c.noModTime && logs.count("no ETag or Last-Modified") != 0 {
				t.Errorf("a warning about missing validators from a server that sends one:\n%s", logs.String())
			}
		})
	}
}

// A redirect to the file: the validator pinned is the final resource's,
// and later requests carry it.
func TestValidatorOfFinalResource(t *testing.T) {
	data := testData(10*testBlock, 22)
	srv := newTestServer(t, data)
	srv.change(data, `"final"`, srv.modTime)
	srv.setPlans(func(n int64, r *http.Request) plan {
		if r.URL.Path == "/start" {
			return plan{handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"redirector"`)
				http.Redirect(w, r, "/appliance.ova", http.StatusFound)
			}}
		}
		return plan{}
	})
	f := mustOpen(t, srv.URL+"/start", testOptions())
	readCheck(t, f, data, 5*testBlock, 10)
	last := srv.seen()[len(srv.seen())-1]
	if got := last.header.Get("If-Range"); got != `"final"` || last.path != "/appliance.ova" {
		t.Errorf("the last request to %s had If-Range %q, want the final resource's", last.path, got)
	}
	if strings.Contains(f.URL(), "appliance") {
		t.Errorf("URL() = %s: it should be the URL given", f.URL())
	}
}

// wholeFile answers any request with all of data and no validators, as a
// server does whose If-Range did not match.
func wholeFile(data []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data)
	}
}

// Identity tells versions apart by validator and size, ignores a
// presigned URL's changing query, and is nil when nothing names the bytes.
func TestIdentity(t *testing.T) {
	data := testData(2*testBlock, 77)
	srv := newTestServer(t, data)
	id := func(rawURL string) string {
		f := mustOpen(t, rawURL, Options{BlockSize: testBlock})
		defer f.Close()
		return string(f.Identity())
	}
	first := id(srv.url() + "?X-Amz-Signature=one")
	if first == "" || first != id(srv.url()+"?X-Amz-Signature=two") {
		t.Errorf("identity changes with the query string: %q", first)
	}
	if strings.Contains(first, "Signature") {
		t.Errorf("identity holds the query string: %q", first)
	}
	srv.change(data, `"v2"`, time.Time{})
	if second := id(srv.url()); second == first || second == "" {
		t.Errorf("a new ETag keeps identity %q", second)
	}
	srv.change(data, "", time.Time{})
	if none := id(srv.url()); none != "" {
		t.Errorf("no validator, yet identity %q", none)
	}
}
