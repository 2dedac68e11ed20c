package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Defaults, and the limits Options are checked against.
const (
	// DefaultBlockSize is 1 MiB: large enough that one request's latency
	// is spread over enough bytes (sequential readers also get adjacent
	// blocks in one request, and read-ahead), small enough that a random
	// read (a tar header, a grain of a disk image) does not drag in much
	// it does not need.
	DefaultBlockSize = 1 << 20
	MinBlockSize     = 64 << 10
	MaxBlockSize     = 4 << 20

	DefaultMemoryBudget = 64 << 20
	DefaultDiskBudget   = 1 << 30
	// DefaultConnections is 4: enough parallel requests to hide latency
	// and fill a fast link, few enough not to be throttled as a crawler.
	DefaultConnections = 4
	MaxConnections     = 64
	// DefaultReadAhead is 16 blocks (16 MiB with the default block size),
	// a quarter of the memory budget. Once disks inflated at 750 MB/s, a
	// remote raw view read 0.66-0.77x of the local read on loopback with 8
	// blocks, and 0.73-0.85x with 16 (alternating runs of make bench).
	DefaultReadAhead      = 16
	DefaultRequestTimeout = 30 * time.Second
	// DefaultRetries retries a failing request 4 times (5 attempts,
	// about 4 s of backoff in all) before the read fails.
	DefaultRetries = 4

	// maxRequestBytes bounds one range request, so a long read is spread
	// over parallel requests and a failure costs at most this much again.
	maxRequestBytes = 8 << 20
	// maxRetryWait caps a server's Retry-After: a read blocked longer
	// than this is better failed than hung.
	maxRetryWait = 30 * time.Second
	// maxRedirects is net/http's own default limit.
	maxRedirects = 10
)

// Options configure Open. The zero value is usable: every field has a
// default.
type Options struct {
	// Client sends the requests. When nil, one is built from RootCAs,
	// Connections and RequestTimeout, with keep-alive connections to the
	// host and proxies taken from the environment. A given Client is used
	// as it is (its redirect policy too); RootCAs cannot be combined with it.
	Client *http.Client

	// Header is sent with every request, for example an Authorization
	// header. Header values are never logged. net/http drops
	// Authorization (and Cookie) when a redirect leads to another host,
	// which is what a presigned URL on a storage host needs.
	Header http.Header

	// Sign, when set, authorizes each request: it is called on every
	// attempt, a retry's too, right before the request is sent, with its
	// final URL and headers (Range, If-Match and the rest), so that a
	// signature covering the time and the headers, such as AWS SigV4, is
	// computed afresh each time and never goes stale across retries. It
	// may set headers; it must not touch the body (a GET has none). It
	// runs under the request's timeout and context. An error fails the
	// request without a retry. Redirect hops are not signed again, so a
	// signed request should not be redirected. What it sets is never
	// logged.
	Sign func(*http.Request) error

	// DescribeError, when set, is given the status, headers and the
	// first 4 KiB of the body of an answer that fails a request (4xx,
	// 5xx), and returns what the server said about it (S3's error Code
	// and Message, for example), or nil. The StatusError the request
	// fails with carries it as Detail and wraps it, so errors.Is sees
	// the sentinels it wraps. Whether the failure is retried is still
	// decided by the status alone. What it returns must not hold
	// credentials: it is logged with retried failures.
	DescribeError func(status int, header http.Header, body []byte) error

	// Name, when set, is how the file is named in logs, errors and
	// File.URL, in place of its redacted URL (for example s3://bucket/key
	// for the object's HTTPS URL). The disk cache and Identity still key
	// on the URL, which says which server holds the bytes.
	Name string

	// NetrcFile, when set, names a netrc file whose entry for the URL's
	// host gives Basic credentials. It is used only when neither Header
	// nor the URL carries credentials.
	NetrcFile string

	// RootCAs, when set, are the CAs a server's certificate must chain to,
	// in place of the system's: to trust a private CA as well, pass the
	// system pool with it added. Taking a pool rather than a file lets a
	// caller parse its CA bundle once and share it with its other users
	// (ovfmount's --ca also checks the package signer's chain). When nil,
	// the system's roots. Certificates are always verified.
	RootCAs *x509.CertPool

	// Version is the ovfmount version, sent as User-Agent "ovfmount/Version"
	// (just "ovfmount" when empty). A User-Agent in Header wins.
	Version string

	// BlockSize is the unit of fetching and caching: a power of two from
	// MinBlockSize to MaxBlockSize. Default DefaultBlockSize.
	BlockSize int

	// MemoryBudget bounds the bytes of blocks kept in memory (least
	// recently used go first). At least one block. Default
	// DefaultMemoryBudget.
	MemoryBudget int64

	// CacheDir, when set, keeps fetched blocks on disk, so a later mount
	// of the same remote file reads them without requests. Entries are
	// bound to the server's validator: a file that changed never reuses
	// them, and a server that sends no validator gets no disk cache.
	CacheDir string

	// DiskBudget bounds the bytes CacheDir holds. Files of one process
	// that share a CacheDir share one budget, the smallest they give.
	// Default DefaultDiskBudget.
	DiskBudget int64

	// Connections bounds the requests in flight at once (and so the
	// connections to the host). Read-ahead may use at most half of them,
	// so it never starves reads that are waited for. Default
	// DefaultConnections.
	Connections int

	// ReadAhead is how many blocks are fetched ahead of a sequential
	// reader. Negative turns read-ahead off. Default DefaultReadAhead.
	ReadAhead int

	// RequestTimeout bounds the wait for a response's headers and then for
	// every next piece of its body: a server that stalls mid-body is given
	// up on after this long, and the request retried. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration

	// Retries is how many times a request is retried after a transient
	// failure (a dropped connection, a truncated body, a timeout, HTTP
	// 5xx, 408 or 429) before the read fails with ErrUnavailable. Waits
	// grow exponentially with jitter, or follow the server's Retry-After
	// (capped at 30 s). Negative means no retries. Default DefaultRetries.
	Retries int

	// Log receives warnings and errors the File handles itself: retried
	// failures, a change of the remote file, a corrupt disk cache entry.
	// URLs in it are redacted (no userinfo, no query string) and headers
	// are never logged. The zero Logger logs nothing.
	Log zerolog.Logger

	// Test knobs: the first backoff, and the cap on Retry-After.
	backoff      time.Duration
	maxRetryWait time.Duration
}

// config is Options with the defaults applied and the values checked.
type config struct {
	blockSize  int64
	memBlocks  int
	diskBudget int64
	conns      int
	readAhead  int // blocks; 0 means off
	timeout    time.Duration
	policy     retryPolicy
	userAgent  string
}

func (o *Options) resolve() (config, error) {
	c := config{
		blockSize:  DefaultBlockSize,
		diskBudget: DefaultDiskBudget,
		conns:      DefaultConnections,
		readAhead:  DefaultReadAhead,
		timeout:    DefaultRequestTimeout,
		policy: retryPolicy{
			retries:    DefaultRetries,
			backoff:    250 * time.Millisecond,
			maxBackoff: 8 * time.Second,
			maxWait:    maxRetryWait,
		},
		userAgent: "ovfmount",
	}
	if o.BlockSize != 0 {
		bs := o.BlockSize
		if bs < MinBlockSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
			return c, fmt.Errorf("remote: block size %d is not a power of two from %d to %d", bs, MinBlockSize, MaxBlockSize)
		}
		c.blockSize = int64(bs)
	}
	mem := int64(DefaultMemoryBudget)
	if o.MemoryBudget != 0 {
		mem = o.MemoryBudget
	}
	if mem < c.blockSize {
		return c, fmt.Errorf("remote: memory budget %d is less than one block (%d bytes)", mem, c.blockSize)
	}
	c.memBlocks = int(min(mem/c.blockSize, 1<<30))
	switch {
	case o.DiskBudget < 0:
		return c, fmt.Errorf("remote: negative disk budget %d", o.DiskBudget)
	case o.DiskBudget > 0:
		c.diskBudget = o.DiskBudget
	}
	switch {
	case o.Connections < 0 || o.Connections > MaxConnections:
		return c, fmt.Errorf("remote: connections %d is not from 1 to %d", o.Connections, MaxConnections)
	case o.Connections > 0:
		c.conns = o.Connections
	}
	switch {
	case o.ReadAhead < 0:
		c.readAhead = 0
	case o.ReadAhead > 0:
		c.readAhead = o.ReadAhead
	}
	// Read-ahead beyond half the memory budget would evict the blocks it
	// fetched before the reader gets to them.
	c.readAhead = min(c.readAhead, c.memBlocks/2)
	switch {
	case o.RequestTimeout < 0:
		return c, fmt.Errorf("remote: negative request timeout %v", o.RequestTimeout)
	case o.RequestTimeout > 0:
		c.timeout = o.RequestTimeout
	}
	switch {
	case o.Retries < 0:
		c.policy.retries = 0
	case o.Retries > 0:
		c.policy.retries = o.Retries
	}
	if o.backoff > 0 {
		c.policy.backoff = o.backoff
		c.policy.maxBackoff = max(o.backoff, 8*o.backoff)
	}
	if o.maxRetryWait > 0 {
		c.policy.maxWait = o.maxRetryWait
	}
	if o.Version != "" {
		c.userAgent = "ovfmount/" + o.Version
	}
	if o.Client != nil && o.RootCAs != nil {
		return c, errors.New("remote: RootCAs cannot be combined with a Client of the caller's")
	}
	return c, nil
}

// newClient returns the client requests are sent with: the caller's or a
// new one, either way counting every round trip (redirect hops too) into
// requests. own is the transport built here, to close when the File is.
func newClient(o *Options, c *config, requests *atomic.Int64) (client *http.Client, own *http.Transport) {
	if o.Client != nil {
		cl := *o.Client
		base := cl.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		cl.Transport = &countingTransport{base: base, n: requests}
		return &cl, nil
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	// Each request's watchdog (see send) times out connecting, the TLS
	// handshake and the headers; the transport's own limits are only a
	// backstop, longer, so that one clock decides.
	dialer := &net.Dialer{Timeout: 2 * c.timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 2 * c.timeout,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        2 * c.conns,
		MaxIdleConnsPerHost: c.conns,
		MaxConnsPerHost:     c.conns,
		IdleConnTimeout:     90 * time.Second,
		// Ranges address the bytes as stored: a transparently
		// decompressed body would not be the bytes asked for.
		DisableCompression: true,
	}
	client = &http.Client{
		Transport:     &countingTransport{base: tr, n: requests},
		CheckRedirect: checkRedirect,
	}
	return client, tr
}

var (
	errTooManyRedirects = fmt.Errorf("stopped after %d redirects", maxRedirects)
	errDowngrade        = errors.New("refusing a redirect from https to http")
)

// checkRedirect is net/http's default policy, less one thing: a redirect
// from https to plain http is refused, since it would send the request
// headers (credentials among them, for the same host) in the clear.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errTooManyRedirects
	}
	if req.URL.Scheme == "http" && via[len(via)-1].URL.Scheme == "https" {
		return errDowngrade
	}
	return nil
}

// countingTransport counts round trips, which is what a server (and its
// bill) sees as requests.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}

func (t *countingTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// baseHeader is the header every request starts from: the caller's, less
// what this package must control, plus User-Agent and credentials.
func baseHeader(o *Options, c *config, u *url.URL) (http.Header, error) {
	h := o.Header.Clone()
	if h == nil {
		h = make(http.Header)
	}
	for _, k := range []string{"Range", "If-Range", "If-Match", "If-None-Match",
		"If-Modified-Since", "If-Unmodified-Since", "Accept-Encoding"} {
		h.Del(k)
	}
	// A compressed answer's bytes are not the file's bytes.
	h.Set("Accept-Encoding", "identity")
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", c.userAgent)
	}
	if o.NetrcFile != "" && h.Get("Authorization") == "" && u.User == nil {
		entries, err := readNetrc(o.NetrcFile)
		if err != nil {
			return nil, fmt.Errorf("remote: %w", err)
		}
		if e, ok := netrcLookup(entries, u.Hostname()); ok {
			req := http.Request{Header: h}
			req.SetBasicAuth(e.login, e.password)
		}
	}
	return h, nil
}
