package remote

import (
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A chain of redirects (301, 302, 307) is followed to the file, at Open
// and on every read, and every hop is counted as a request.
func TestRedirectChain(t *testing.T) {
	data := testData(10*testBlock, 40)
	srv := newTestServer(t, data)
	hops := map[string]struct {
		to   string
		code int
	}{
		"/a": {"/b", http.StatusMovedPermanently},
		"/b": {"/c", http.StatusFound},
		"/c": {"/appliance.ova", http.StatusTemporaryRedirect},
	}
	srv.setPlans(func(n int64, r *http.Request) plan {
		if h, ok := hops[r.URL.Path]; ok {
			return plan{handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, h.to, h.code)
			}}
		}
		return plan{}
	})
	opt := testOptions()
	opt.ReadAhead = -1
	f := mustOpen(t, srv.URL+"/a", opt)
	if got := f.Stats().Requests; got != 4 {
		t.Errorf("Open: %d requests, want 4 (3 hops and the file)", got)
	}
	readCheck(t, f, data, 7*testBlock+5, testBlock)
	if got := f.Stats().Requests; got != 8 {
		t.Errorf("after a read: %d requests, want 8", got)
	}
	for _, s := range srv.seen() {
		if s.header.Get("Range") == "" {
			t.Errorf("a request to %s lost its Range header on the way", s.path)
		}
	}
}

// A redirect loop ends in an error, without retries.
func TestRedirectLoop(t *testing.T) {
	srv := newTestServer(t, nil)
	srv.setPlans(func(n int64, r *http.Request) plan {
		return plan{handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/loop", http.StatusFound)
		}}
	})
	_, err := Open(t.Context(), srv.url(), testOptions())
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Fatalf("Open: %v, want a redirect error", err)
	}
	if got := srv.requests.Load(); got != maxRedirects {
		t.Errorf("%d requests, want %d (no retries)", got, maxRedirects)
	}
}

// A presigned URL: the server the user named redirects to another host
// with a signature in the query string. The Authorization header goes
// only to the host the user named; the signature appears in no log line
// and no error; reads go through the redirect.
func TestCrossHostRedirectToPresignedURL(t *testing.T) {
	data := testData(10*testBlock, 41)
	storage := newTestServer(t, data)
	storage.change(data, `"storage-etag"`, storage.modTime)
	const signature = "SIGNATURE-5ecret"
	u, _ := url.Parse(storage.url())
	// The same loopback server under another name: another host to
	// net/http, which drops Authorization on the way there.
	u.Host = "localhost:" + u.Port()
	presigned := u.String() + "?X-Amz-Signature=" + signature + "&X-Amz-Expires=300"

	front := newTestServer(t, nil)
	front.setPlans(func(n int64, r *http.Request) plan {
		return plan{handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, presigned, http.StatusFound)
		}}
	})
	var logs logBuffer
	opt := testOptions()
	opt.ReadAhead = -1
	opt.Header = http.Header{"Authorization": {"Bearer front-token"}}
	opt.Log = logs.logger()
	f := mustOpen(t, front.url(), opt)
	readCheck(t, f, data, 5*testBlock, 2*testBlock)

	for _, s := range front.seen() {
		if s.header.Get("Authorization") != "Bearer front-token" {
			t.Errorf("the front server got no Authorization")
		}
	}
	for _, s := range storage.seen() {
		if a := s.header.Get("Authorization"); a != "" {
			t.Errorf("the storage host got Authorization %q", a)
		}
		if got := s.header.Get("If-Range"); s.header.Get("Range") != "bytes=0-65535" && got != `"storage-etag"` {
			t.Errorf("a read carried If-Range %q, want the storage host's ETag", got)
		}
	}

	// Make the storage host fail, so its URL ends up in errors and logs.
	storage.setPlans(func(int64, *http.Request) plan {
		return plan{handler: func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }}
	})
	_, err := f.ReadAt(make([]byte, 10), 9*testBlock)
	if err == nil {
		t.Fatal("read from a failing storage host succeeded")
	}
	for what, s := range map[string]string{"error": err.Error(), "log": logs.String(), "URL()": f.URL()} {
		if strings.Contains(s, signature) || strings.Contains(s, "front-token") {
			t.Errorf("the %s shows a secret: %s", what, s)
		}
	}
	if !strings.Contains(err.Error(), "?REDACTED") {
		t.Errorf("the error does not name the redirect target, redacted: %v", err)
	}
}

// TLS: an untrusted certificate fails Open with an error that says so,
// and is not retried; the same server works once its certificate is among
// RootCAs, and RootCAs replace the system's roots rather than add to them.
func TestTLSVerification(t *testing.T) {
	data := testData(5*testBlock, 42)
	tlsSrv := newTLSTestServer(t, data)

	_, err := Open(t.Context(), tlsSrv.url(), testOptions())
	if err == nil || !strings.Contains(err.Error(), "TLS certificate not trusted") || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open without the CA: %v, want a final TLS error", err)
	}
	if got := tlsSrv.requests.Load(); got != 0 {
		t.Errorf("%d requests got through an untrusted connection", got)
	}

	// As ovfmount's --ca builds it: the system's roots plus the CA.
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AddCert(tlsSrv.Certificate())
	opt := testOptions()
	opt.RootCAs = pool
	f := mustOpen(t, tlsSrv.url(), opt)
	readCheck(t, f, data, 0, len(data))

	opt.RootCAs = x509.NewCertPool()
	if _, err := Open(t.Context(), tlsSrv.url(), opt); err == nil || !strings.Contains(err.Error(), "TLS certificate not trusted") {
		t.Errorf("Open with RootCAs that lack the server's CA: %v, want a TLS error", err)
	}
}

func newTLSTestServer(t *testing.T, data []byte) *testServer {
	s := &testServer{stop: make(chan struct{}), data: data, etag: `"tls"`}
	s.Server = httptest.NewUnstartedServer(s)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Server.Close)
	t.Cleanup(func() { close(s.stop) })
	return s
}

// Credentials are sent and never logged: an Authorization header, and a
// password in the URL, through retries and a change of the file, which
// log the most.
func TestCredentialsNeverLogged(t *testing.T) {
	data := testData(10*testBlock, 43)
	srv := newTestServer(t, data)
	var logs logBuffer
	opt := testOptions()
	opt.ReadAhead = -1
	opt.Header = http.Header{"Authorization": {"Bearer s3cr3t-t0ken"}, "X-Extra": {"yes"}}
	opt.Log = logs.logger()
	srv.setPlans(func(n int64, r *http.Request) plan {
		if n <= 2 {
			return plan{status: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"0"}}}
		}
		return plan{}
	})
	u, _ := url.Parse(srv.url())
	u.User = url.UserPassword("alice", "pa55w0rd")
	u.RawQuery = "token=qu3ry-s3cret"
	f := mustOpen(t, u.String(), opt)
	readCheck(t, f, data, 3*testBlock, 10)
	srv.change(testData(10*testBlock, 44), `"v2"`, srv.modTime)
	if _, err := f.ReadAt(make([]byte, 10), 6*testBlock); !errors.Is(err, ErrChanged) {
		t.Fatalf("read after a change: %v", err)
	}
	_, err := f.ReadAt(make([]byte, 10), 7*testBlock)
	for _, s := range srv.seen() {
		if s.header.Get("Authorization") != "Bearer s3cr3t-t0ken" || s.header.Get("X-Extra") != "yes" {
			t.Fatalf("a request without the caller's headers: %v", s.header)
		}
	}
	if logs.count("retrying") != 2 || logs.count("changed") != 1 {
		t.Errorf("expected 2 retries and a change in the log:\n%s", logs.String())
	}
	for what, s := range map[string]string{"log": logs.String(), "error": err.Error(), "URL()": f.URL()} {
		for _, secret := range []string{"s3cr3t-t0ken", "pa55w0rd", "qu3ry-s3cret", "alice"} {
			if strings.Contains(s, secret) {
				t.Errorf("the %s shows %q: %s", what, secret, s)
			}
		}
	}
}

// A netrc entry for the host gives Basic credentials, unless the caller
// gave an Authorization header.
func TestNetrcCredentials(t *testing.T) {
	data := testData(3*testBlock, 45)
	srv := newTestServer(t, data)
	netrc := filepath.Join(t.TempDir(), "netrc")
	os.WriteFile(netrc, []byte("machine other.example login x password y\nmachine 127.0.0.1\n  login ovf\n  password \"s p a c e\"\n"), 0o600)
	opt := testOptions()
	opt.NetrcFile = netrc
	f := mustOpen(t, srv.url(), opt)
	readCheck(t, f, data, 0, len(data))
	r := http.Request{Header: srv.seen()[0].header}
	if user, pass, ok := r.BasicAuth(); !ok || user != "ovf" || pass != "s p a c e" {
		t.Errorf("Basic credentials %q %q %v, want the netrc's", user, pass, ok)
	}

	opt.Header = http.Header{"Authorization": {"Bearer given"}}
	mustOpen(t, srv.url(), opt)
	if got := srv.seen()[len(srv.seen())-1].header.Get("Authorization"); got != "Bearer given" {
		t.Errorf("Authorization %q: the netrc overrode the caller's header", got)
	}

	opt.Header = nil
	opt.NetrcFile = filepath.Join(t.TempDir(), "missing")
	if _, err := Open(t.Context(), srv.url(), opt); err == nil {
		t.Error("Open with a missing netrc file succeeded")
	}
}
