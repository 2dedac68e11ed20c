package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// send sends a GET with header h. The request is watched: it fails with a
// retryable timeout when the headers, or later any next piece of the body,
// take longer than the request timeout. The caller closes the body.
func (f *File) send(ctx context.Context, h http.Header) (*http.Response, error) {
	actx, cancel := context.WithCancel(ctx)
	wd := newWatchdog(f.cfg.timeout, cancel)
	req, err := http.NewRequestWithContext(actx, http.MethodGet, f.rawURL, nil)
	if err != nil {
		wd.stop()
		cancel()
		return nil, redactError(err)
	}
	req.Header = h
	if f.sign != nil {
		// Here, on every attempt: a signature covers the time and the
		// headers, so a retry needs a new one.
		if err := f.sign(req); err != nil {
			wd.stop()
			cancel()
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if wd.fired.Load() {
				return nil, retryable(&timeoutError{f.cfg.timeout})
			}
			return nil, fmt.Errorf("authorizing the request: %w", err)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		wd.stop()
		cancel()
		return nil, f.transportError(ctx, wd, err)
	}
	wd.kick()
	resp.Body = &watchedBody{body: resp.Body, wd: wd, cancel: cancel, ctx: ctx, f: f}
	return resp, nil
}

// watchdog cancels a request that makes no progress for d. Unlike a
// deadline on the whole request, it lets a long body take as long as it
// needs while it keeps arriving, yet a stall anywhere is caught.
type watchdog struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
}

func newWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel()
	})
	return w
}

func (w *watchdog) kick() { w.t.Reset(w.d) }
func (w *watchdog) stop() { w.t.Stop() }

// watchedBody kicks the watchdog on every piece of body that arrives,
// counts the bytes, and turns transport errors into the package's.
type watchedBody struct {
	body   io.ReadCloser
	wd     *watchdog
	cancel context.CancelFunc
	ctx    context.Context // the caller's: its end is not a timeout
	f      *File
	closed bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.wd.kick()
		b.f.stats.bytes.Add(int64(n))
	}
	if err != nil && err != io.EOF {
		err = b.f.transportError(b.ctx, b.wd, err)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.wd.stop()
	err := b.body.Close()
	b.cancel()
	return err
}

// transportError classifies a failure to send a request or read its
// answer: the caller's cancellation as it is, a timeout or a network
// failure as retryable, and what no retry can cure (an untrusted
// certificate, a redirect loop, an unknown host) as final.
func (f *File) transportError(ctx context.Context, wd *watchdog, err error) error {
	err = redactError(err)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if wd.fired.Load() {
		return retryable(&timeoutError{f.cfg.timeout})
	}
	if isCertError(err) {
		return fmt.Errorf("TLS certificate not trusted (give the CA that issued it with --ca): %w", err)
	}
	var rh tls.RecordHeaderError
	var alert tls.AlertError
	if errors.As(err, &rh) || errors.As(err, &alert) {
		return fmt.Errorf("TLS handshake failed: %w", err)
	}
	if errors.Is(err, errTooManyRedirects) || errors.Is(err, errDowngrade) {
		return err
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return err
	}
	return retryable(err)
}

func isCertError(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &host) || errors.As(err, &invalid)
}

// maxErrorBody bounds what is read of an error answer's body.
const maxErrorBody = 4 << 10

// statusFailure turns an answer that cannot be used into an error:
// retryable for 408, 429 and 5xx (with the server's Retry-After), final
// for the rest. It reads a little of the body, so the connection can be
// reused for an error page, but never a large one; with DescribeError,
// that little is what explains the status.
func (f *File) statusFailure(resp *http.Response) error {
	se := &StatusError{Code: resp.StatusCode}
	if f.explain == nil {
		drainClose(resp.Body)
	} else {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		se.Detail = f.explain(resp.StatusCode, resp.Header, body)
	}
	switch c := resp.StatusCode; {
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests,
		c >= 500 && c <= 599 && c != http.StatusNotImplemented && c != http.StatusHTTPVersionNotSupported:
		re := &retryableError{err: se}
		re.after, re.hasAfter = retryAfter(resp)
		return re
	}
	return se
}

func drainClose(body io.ReadCloser) {
	io.CopyN(io.Discard, body, maxErrorBody)
	body.Close()
}

// checkBody refuses answers whose body is not the plain bytes of one
// range.
func checkBody(resp *http.Response) error {
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return protocolf("the body is encoded (Content-Encoding %s) although identity was asked for", quoteHeader(ce))
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(strings.ToLower(ct), "multipart/") {
		return protocolf("a multipart answer (Content-Type %s) to a single range", quoteHeader(ct))
	}
	return nil
}

// validator is what identifies the version of the remote file that was
// opened.
type validator struct {
	etag    string    // as the server sent it; "" if none
	strong  bool      // etag is a well-formed strong tag, usable in If-Range and If-Match
	modTime time.Time // Last-Modified; zero if none or unparsable
}

func newValidator(h http.Header) validator {
	v := validator{etag: h.Get("ETag")}
	v.strong = isStrongETag(v.etag)
	if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		v.modTime = t
	}
	return v
}

// isStrongETag reports whether s is a strong entity tag as RFC 9110
// spells it. Anything else (weak, or unquoted as some servers send) is
// only compared, never sent: a malformed If-Range would be read as a date
// that never matches, and every request would look like a change.
func isStrongETag(s string) bool {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; c == '"' || c < 0x21 || c == 0x7f {
			return false
		}
	}
	return true
}

// conditional reports whether requests carry an If-Range, so that a 200
// answer means the server saw a different file.
func (v validator) conditional() bool { return v.strong || !v.modTime.IsZero() }

// any reports whether changes can be seen by more than the size.
func (v validator) any() bool { return v.etag != "" || !v.modTime.IsZero() }

// setConditions makes a changed file answer with a whole body (If-Range)
// or 412 (If-Match) instead of bytes of the new version.
func (v validator) setConditions(h http.Header) {
	switch {
	case v.strong:
		h.Set("If-Range", v.etag)
		h.Set("If-Match", v.etag)
	case !v.modTime.IsZero():
		h.Set("If-Range", v.modTime.UTC().Format(http.TimeFormat))
	}
}

// check compares an answer's validators with the pinned ones. A header the
// answer leaves out is not evidence of a change; a different one is.
func (v validator) check(h http.Header) error {
	if got := h.Get("ETag"); v.etag != "" && got != "" && opaqueTag(got) != opaqueTag(v.etag) {
		return changedf("its ETag was %s and is now %s", quoteHeader(v.etag), quoteHeader(got))
	}
	if !v.modTime.IsZero() {
		if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil && !t.Equal(v.modTime) {
			return changedf("it was last modified %s and now %s",
				v.modTime.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// opaqueTag strips the weakness mark: a tag turning weak (as some
// servers do for the same bytes) is not a change, a different tag is.
func opaqueTag(s string) string { return strings.TrimPrefix(s, "W/") }

// cacheKey is the validator that may key the disk cache: one that names
// these exact bytes. A weak tag only promises equivalent content, so it
// is not enough on its own.
func (v validator) cacheKey() string {
	switch {
	case v.strong:
		return "etag " + v.etag
	case !v.modTime.IsZero():
		return "modified " + v.modTime.UTC().Format(time.RFC3339) + " " + v.etag
	}
	return ""
}

// requestHeader is the header of a request for bytes first..last.
func (f *File) requestHeader(first, last int64, conditional bool) http.Header {
	h := f.header.Clone()
	h.Set("Range", fmt.Sprintf("bytes=%d-%d", first, last))
	if conditional {
		f.val.setConditions(h)
	}
	return h
}

// span is what is left of a run to fetch: bytes pos..end, block by block.
type span struct {
	pos, end  int64
	buf       []byte // the block being filled, from its start up to pos
	completed int    // blocks delivered so far
	deliver   func(idx int64, data []byte)
}

// fetchBlocks fetches blocks first..last in one range request, resuming
// where it broke off after a retryable failure, and delivers each block as
// soon as it is complete.
func (f *File) fetchBlocks(ctx context.Context, r *run, first, last int64) error {
	s := &span{
		pos:     first * f.bs,
		end:     min((last+1)*f.bs, f.size) - 1,
		deliver: func(idx int64, data []byte) { f.publish(r, idx, data, fromNetwork) },
	}
	op := fmt.Sprintf("bytes %d-%d", s.pos, s.end)
	return f.retrying(ctx, op, func() (bool, error) {
		before := s.completed
		for s.pos <= s.end {
			n := s.completed
			if err := f.rangeAttempt(ctx, s); err != nil {
				return s.completed > before, err
			}
			if s.completed == n && s.pos <= s.end {
				return s.completed > before, retryable(fmt.Errorf("the server sent less than asked for, stopping at byte %d of %d, within a block", s.pos, s.end))
			}
		}
		return true, nil
	})
}

// rangeAttempt makes one request for what is left of s.
func (f *File) rangeAttempt(ctx context.Context, s *span) error {
	if err := f.acquireConn(ctx); err != nil {
		return err
	}
	defer f.releaseConn()
	resp, err := f.send(ctx, f.requestHeader(s.pos, s.end, true))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		last, err := f.checkPartial(resp, s.pos, s.end)
		if err != nil {
			return err
		}
		return f.consume(resp.Body, s, last)
	case http.StatusOK:
		// The body is never read: it may be the whole file.
		if err := f.val.check(resp.Header); err != nil {
			return err
		}
		if err := checkBody(resp); err != nil {
			return err
		}
		if s.pos == 0 && s.end == f.size-1 && resp.ContentLength == f.size {
			return f.consume(resp.Body, s, s.end) // a whole small file, as at Open
		}
		if f.val.conditional() {
			return changedf("the server answered bytes %d-%d with the whole file, as it does when If-Range no longer matches", s.pos, s.end)
		}
		return fmt.Errorf("%w: the server answered bytes %d-%d with the whole file", ErrNoRanges, s.pos, s.end)
	case http.StatusPreconditionFailed:
		drainClose(resp.Body)
		return changedf("the server refused If-Match %s (HTTP 412)", quoteHeader(f.val.etag))
	case http.StatusRequestedRangeNotSatisfiable:
		drainClose(resp.Body)
		return changedf("bytes %d-%d are no longer there (HTTP 416, Content-Range %s)",
			s.pos, s.end, quoteHeader(resp.Header.Get("Content-Range")))
	}
	return f.statusFailure(resp)
}

// checkPartial checks a 206 answer to a request for bytes pos..end, and
// returns the last byte it holds. A server may send less than asked (from
// pos on), never more, never from elsewhere, never of another file.
func (f *File) checkPartial(resp *http.Response, pos, end int64) (int64, error) {
	if err := checkBody(resp); err != nil {
		return 0, err
	}
	if err := f.val.check(resp.Header); err != nil {
		return 0, err
	}
	crv := resp.Header.Get("Content-Range")
	cr, err := parseContentRange(crv)
	if err != nil {
		return 0, err
	}
	switch {
	case cr.unsatisfied():
		return 0, protocolf("HTTP 206 with the Content-Range of a 416, %s", quoteHeader(crv))
	case cr.total < 0:
		return 0, protocolf("Content-Range %s does not give the file size", quoteHeader(crv))
	case cr.total != f.size:
		return 0, changedf("its size was %d bytes and is now %d", f.size, cr.total)
	case cr.first != pos || cr.last > end:
		return 0, protocolf("the server answered a request for bytes %d-%d with bytes %d-%d", pos, end, cr.first, cr.last)
	case resp.ContentLength >= 0 && resp.ContentLength != cr.last-cr.first+1:
		return 0, protocolf("Content-Length %d does not match Content-Range %s", resp.ContentLength, quoteHeader(crv))
	}
	return cr.last, nil
}

// consume reads bytes s.pos..last from body into blocks. A block the
// answer completes before its end is delivered at once; the one completed
// by its last byte only once the body is seen to end there, since more
// bytes than asked for make the whole answer suspect.
func (f *File) consume(body io.Reader, s *span, last int64) error {
	pending := int64(-1)
	for s.pos <= last {
		idx := s.pos / f.bs
		start, n := idx*f.bs, f.blockLen(idx)
		if s.buf == nil {
			s.buf = make([]byte, 0, n)
		}
		stop := min(start+n-1, last)
		want := int(stop - s.pos + 1)
		got, err := io.ReadFull(body, s.buf[len(s.buf):len(s.buf)+want])
		s.buf = s.buf[:len(s.buf)+got]
		s.pos += int64(got)
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return retryable(fmt.Errorf("the answer ended %d bytes short of its range", last-s.pos+1))
		}
		if err != nil {
			return err
		}
		if s.pos == start+n {
			if s.pos <= last {
				s.deliver(idx, s.buf)
				s.buf = nil
				s.completed++
			} else {
				pending = idx
			}
		}
	}
	var probe [1]byte
	if n, _ := io.ReadFull(body, probe[:]); n > 0 {
		if pending >= 0 {
			s.pos -= int64(len(s.buf))
			s.buf = nil
		}
		return protocolf("the server sent more than the %d bytes asked for", last+1)
	}
	if pending >= 0 {
		s.deliver(pending, s.buf)
		s.buf = nil
		s.completed++
	}
	return nil
}

// source says where a published block came from.
type source int

const (
	fromNetwork source = iota
	fromDisk
)

// execRun fetches a run's blocks: from the disk cache where it holds them,
// the rest over HTTP, each stretch of adjacent misses in one request.
func (f *File) execRun(ctx context.Context, r *run) error {
	if f.disk == nil {
		return f.fetchBlocks(ctx, r, r.first, r.last)
	}
	missFrom := int64(-1)
	for idx := r.first; idx <= r.last+1; idx++ {
		hit := false
		if idx <= r.last {
			hit = f.diskGet(r, idx)
		}
		switch {
		case !hit && idx <= r.last && missFrom < 0:
			missFrom = idx
		case (hit || idx > r.last) && missFrom >= 0:
			if err := f.fetchBlocks(ctx, r, missFrom, idx-1); err != nil {
				return err
			}
			missFrom = -1
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// diskGet publishes block idx from the disk cache if it holds a good copy.
func (f *File) diskGet(r *run, idx int64) bool {
	data, err := f.disk.get(idx, int(f.blockLen(idx)))
	if err != nil {
		if errors.Is(err, errCorrupt) {
			f.stats.diskCorrupt.Add(1)
			f.log.Warn().Str("url", f.name).Int64("block", idx).Str("error", err.Error()).
				Msg("disk cache entry damaged; fetching the block again")
		} else {
			f.warnDisk(err)
		}
		return false
	}
	if data == nil {
		return false
	}
	f.publish(r, idx, data, fromDisk)
	return true
}

// warnDisk logs the first disk cache failure that is not a damaged
// entry (a full or read-only disk): the cache is only an optimisation,
// so reads go on, and one line says why it is not helping.
func (f *File) warnDisk(err error) {
	f.diskWarn.Do(func() {
		f.log.Warn().Str("url", f.name).Str("error", err.Error()).Msg("disk cache not working; reading over the network")
	})
}
