package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// File is a remote file read with HTTP range requests. It is an
// io.ReaderAt; its methods are safe for concurrent use.
type File struct {
	rawURL       string // as given: may hold credentials, so only ever sent
	shown        string // redacted: keys the disk cache and Identity
	name         string // Options.Name, else shown: for logs, errors and URL
	client       *http.Client
	ownTransport *http.Transport // closed with the File; nil for a caller's Client
	header       http.Header
	sign         func(*http.Request) error
	explain      func(status int, header http.Header, body []byte) error
	cfg          config
	log          zerolog.Logger

	size      int64
	bs        int64
	val       validator
	window    int64 // blocks one read waits on at a time
	runBlocks int64 // blocks one request may cover
	raChunk   int64 // blocks one read-ahead request covers

	ctx    context.Context // ends with Close, and every fetch with it
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // fetch goroutines
	conns  chan struct{}  // a slot per request in flight
	pslots chan struct{}  // a slot per read-ahead fetch

	mu      sync.Mutex
	closing bool
	mem     *blockLRU
	flights map[int64]*flight

	failed    atomic.Pointer[error]
	diskCache *diskCache
	disk      *diskBlocks // nil without a usable disk cache
	diskWarn  sync.Once
	ra        readahead
	stats     counters
}

// Stats counts what a File did; tests and benchmarks check costs with it.
type Stats struct {
	Requests     int64 // HTTP round trips, Open's included, and every retry and redirect hop
	Retries      int64 // failed attempts that were retried
	BytesFetched int64 // response body bytes received
	MemoryHits   int64 // blocks a read found in memory
	DiskHits     int64 // blocks read from the disk cache
	DiskCorrupt  int64 // disk cache entries found damaged, and fetched again
	Shared       int64 // blocks a read waited for on another read's (or read-ahead's) request
	Prefetched   int64 // blocks fetched by read-ahead
}

type counters struct {
	requests, retries, bytes, memHits, diskHits, diskCorrupt, shared, prefetched atomic.Int64
}

// Open opens the file at rawURL (http or https) with one request, which
// learns its size and validator and brings its first block (an OVA's
// first tar header) into the cache. It fails with ErrNoRanges for a server
// that cannot send byte ranges, ErrNotFound, ErrAccessDenied, or
// ErrUnavailable when the server keeps failing. ctx bounds Open only.
func Open(ctx context.Context, rawURL string, opt Options) (*File, error) {
	cfg, err := opt.resolve()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("remote: invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("remote: %s: not an http or https URL", redactURL(u))
	}
	f := &File{
		rawURL:  rawURL,
		shown:   redactURL(u),
		name:    redactURL(u),
		sign:    opt.Sign,
		explain: opt.DescribeError,
		cfg:     cfg,
		log:     opt.Log,
		bs:      cfg.blockSize,
		conns:   make(chan struct{}, cfg.conns),
		pslots:  make(chan struct{}, max(1, cfg.conns/2)),
		mem:     newBlockLRU(cfg.memBlocks),
		flights: make(map[int64]*flight),
	}
	if opt.Name != "" {
		f.name = opt.Name
	}
	f.runBlocks = max(1, maxRequestBytes/f.bs)
	f.window = max(1, min(int64(cfg.memBlocks/2), int64(cfg.conns)*f.runBlocks))
	f.raChunk = max(1, min(f.runBlocks, int64(cfg.readAhead)/int64(cap(f.pslots))))
	if f.header, err = baseHeader(&opt, &cfg, u); err != nil {
		return nil, err
	}
	f.client, f.ownTransport = newClient(&opt, &cfg, &f.stats.requests)
	f.ctx, f.cancel = context.WithCancelCause(context.Background())
	if opt.CacheDir != "" {
		if f.diskCache, err = openDiskCache(opt.CacheDir, cfg.diskBudget); err != nil {
			f.shutdown()
			return nil, fmt.Errorf("remote: cache directory: %w", err)
		}
	}
	if err := f.open(ctx); err != nil {
		f.shutdown()
		return nil, fmt.Errorf("remote: %s: %w", f.name, err)
	}
	return f, nil
}

func (f *File) open(ctx context.Context) error {
	var block0 []byte
	var src source
	err := f.retrying(ctx, "open", func() (bool, error) {
		var err error
		block0, src, err = f.openAttempt(ctx)
		return false, err
	})
	if err != nil {
		return err
	}
	if !f.val.any() {
		f.log.Warn().Str("url", f.name).
			Msg("the server sends no ETag or Last-Modified: a change of the remote file is noticed only if its size changes")
	}
	if f.diskCache != nil && f.disk == nil {
		f.log.Warn().Str("url", f.name).
			Msg("disk cache not used: the server sends no validator that names these exact bytes, so a cached block could belong to another version")
	}
	if block0 != nil {
		f.mu.Lock()
		f.mem.add(0, block0)
		f.mu.Unlock()
		if src == fromDisk {
			f.stats.diskHits.Add(1)
		} else if f.disk != nil {
			if err := f.disk.put(0, block0); err != nil {
				f.warnDisk(err)
			}
		}
	}
	return nil
}

// openAttempt asks for the first block, and learns the size and validator
// from the answer. It returns the first block when the answer holds all
// of it.
func (f *File) openAttempt(ctx context.Context) ([]byte, source, error) {
	resp, err := f.send(ctx, f.requestHeader(0, f.bs-1, false))
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var n int64 // bytes of the first block in the body
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := checkBody(resp); err != nil {
			return nil, 0, err
		}
		crv := resp.Header.Get("Content-Range")
		cr, err := parseContentRange(crv)
		switch {
		case err != nil:
			return nil, 0, err
		case cr.unsatisfied():
			return nil, 0, protocolf("HTTP 206 with the Content-Range of a 416, %s", quoteHeader(crv))
		case cr.total < 0:
			return nil, 0, protocolf("Content-Range %s does not give the file size", quoteHeader(crv))
		case cr.first != 0 || cr.last >= f.bs:
			return nil, 0, protocolf("the server answered a request for bytes 0-%d with bytes %d-%d", f.bs-1, cr.first, cr.last)
		case resp.ContentLength >= 0 && resp.ContentLength != cr.last+1:
			return nil, 0, protocolf("Content-Length %d does not match Content-Range %s", resp.ContentLength, quoteHeader(crv))
		}
		f.size, n = cr.total, cr.last+1
	case http.StatusOK:
		if err := checkBody(resp); err != nil {
			return nil, 0, err
		}
		// A whole file no larger than the range asked for is a fine
		// answer; anything larger means ranges are not supported, and
		// the body is closed unread.
		if resp.ContentLength < 0 || resp.ContentLength > f.bs {
			why := ""
			if strings.EqualFold(strings.TrimSpace(resp.Header.Get("Accept-Ranges")), "none") {
				why = ", and says Accept-Ranges: none"
			}
			return nil, 0, fmt.Errorf("%w: the server answered a request for bytes 0-%d with the whole file (HTTP 200)%s",
				ErrNoRanges, f.bs-1, why)
		}
		f.size, n = resp.ContentLength, resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		drainClose(resp.Body)
		crv := resp.Header.Get("Content-Range")
		if cr, err := parseContentRange(crv); err != nil || !cr.unsatisfied() || cr.total != 0 {
			return nil, 0, protocolf("HTTP 416 for bytes 0-%d, which only an empty file can answer, with Content-Range %s", f.bs-1, quoteHeader(crv))
		}
		f.size, n = 0, 0
	default:
		return nil, 0, f.statusFailure(resp)
	}
	f.val = newValidator(resp.Header)
	f.disk = nil
	if k := f.val.cacheKey(); f.diskCache != nil && k != "" {
		// Keyed like Identity, without userinfo or query string: a
		// presigned URL's next signature names the same object.
		f.disk = newDiskBlocks(f.diskCache, objectKey(f.shown, k, f.size, f.bs))
	}
	if n == 0 || n != f.blockLen(0) {
		return nil, 0, nil // nothing to cache: empty, or the server sent less
	}
	if f.disk != nil {
		data, err := f.disk.get(0, int(n))
		switch {
		case errors.Is(err, errCorrupt):
			f.stats.diskCorrupt.Add(1)
			f.log.Warn().Str("url", f.name).Int64("block", 0).Str("error", err.Error()).
				Msg("disk cache entry damaged; fetching the block again")
		case err != nil:
			f.warnDisk(err)
		}
		if data != nil {
			return data, fromDisk, nil // the body is closed unread
		}
	}
	var block0 []byte
	s := &span{end: n - 1}
	s.deliver = func(_ int64, data []byte) { block0 = data }
	if err := f.consume(resp.Body, s, n-1); err != nil {
		return nil, 0, err
	}
	return block0, fromNetwork, nil
}

// blockLen is the length of block idx: the block size, less for the last.
func (f *File) blockLen(idx int64) int64 {
	return min(f.bs, f.size-idx*f.bs)
}

// Size is the size of the remote file, as the server gave it at Open.
func (f *File) Size() int64 { return f.size }

// URL is the file's name as it may be shown: Options.Name when given,
// else its URL without userinfo or query string.
func (f *File) URL() string { return f.name }

// ModTime is the file's Last-Modified as the server gave it at Open; zero
// when it gave none.
func (f *File) ModTime() time.Time { return f.val.modTime }

// Identity names the version of the remote file that was opened, for
// what callers cache about its bytes (chunk tables, seek indexes): its URL
// without userinfo or query string (a presigned URL's signature changes,
// its object does not), its validator and its size. It is nil when the
// server sent no validator that names exact bytes (no strong ETag, no
// Last-Modified), as a later version could then not be told apart.
func (f *File) Identity() []byte {
	key := f.val.cacheKey()
	if key == "" {
		return nil
	}
	return []byte(fmt.Sprintf("remote %s\n%s\n%d", f.shown, key, f.size))
}

// Stats returns the counts so far.
func (f *File) Stats() Stats {
	s := &f.stats
	return Stats{
		Requests:     s.requests.Load(),
		Retries:      s.retries.Load(),
		BytesFetched: s.bytes.Load(),
		MemoryHits:   s.memHits.Load(),
		DiskHits:     s.diskHits.Load(),
		DiskCorrupt:  s.diskCorrupt.Load(),
		Shared:       s.shared.Load(),
		Prefetched:   s.prefetched.Load(),
	}
}

// ReadAt reads len(p) bytes at off, with io.ReaderAt's rules: it returns
// fewer only with an error, io.EOF at the end of the file.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that gives up when ctx ends, returning
// ctx.Err() at once (a FUSE interrupt). A request it started goes on
// while other reads wait for its blocks, and is cancelled when none does.
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if err := f.usable(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("remote: %s: read at negative offset %d", f.name, off)
	}
	if len(p) == 0 && off <= f.size {
		return 0, nil
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), f.size-off))
	n := 0
	for n < want {
		pos := off + int64(n)
		first := pos / f.bs
		last := min((off+int64(want)-1)/f.bs, first+f.window-1)
		blocks, err := f.lookup(first, last)
		if err != nil {
			return n, err
		}
		if n == 0 {
			// After this read's own blocks are asked for, so read-ahead
			// never takes a slot before them.
			f.readAhead(off, int64(want))
		}
		c, err := f.copyBlocks(ctx, blocks, p[n:want], pos)
		n += c
		if err != nil {
			return n, err
		}
	}
	if want < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// copyBlocks copies into dst, from file offset pos, the blocks it waits
// for in order.
func (f *File) copyBlocks(ctx context.Context, blocks []wanted, dst []byte, pos int64) (int, error) {
	defer f.releaseAll(blocks)
	n := 0
	for i := range blocks {
		w := &blocks[i]
		data, err := f.wait(ctx, w)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return n, err
			}
			start := w.idx * f.bs
			return n, fmt.Errorf("remote: %s: block %d (bytes %d-%d): %w", f.name, w.idx, start, start+f.blockLen(w.idx)-1, err)
		}
		if int64(len(data)) != f.blockLen(w.idx) {
			return n, fmt.Errorf("remote: %s: block %d has %d bytes, not %d", f.name, w.idx, len(data), f.blockLen(w.idx))
		}
		c := copy(dst[n:], data[pos+int64(n)-w.idx*f.bs:])
		n += c
		if n == len(dst) {
			break
		}
	}
	return n, nil
}

// usable is nil for a File that can be read: open, and not failed.
func (f *File) usable() error {
	if err := f.failed.Load(); err != nil {
		return *err
	}
	f.mu.Lock()
	closing := f.closing
	f.mu.Unlock()
	if closing {
		return ErrClosed
	}
	return nil
}

// fail puts the File in the failed state for good: once the remote file
// is seen to have changed, no read may return bytes again, whether cached
// or not, or a reader could get a mix of two versions.
func (f *File) fail(err error) {
	e := fmt.Errorf("remote: %s: %w", f.name, err)
	if f.failed.CompareAndSwap(nil, &e) {
		f.log.Error().Str("url", f.name).Str("error", err.Error()).
			Msg("remote file changed since it was opened; every read fails from now on")
	}
}

// Close ends read-ahead and every request in flight, waits for them, and
// drops the caches' hold. Reads after Close fail with ErrClosed.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return nil
	}
	f.closing = true
	f.mem = newBlockLRU(1) // let the blocks go
	f.mu.Unlock()
	f.shutdown()
	return nil
}

// shutdown stops everything the File started. With closing set (or
// before anything could start), no new fetch can begin.
func (f *File) shutdown() {
	if f.cancel != nil {
		f.cancel(ErrClosed)
	}
	f.wg.Wait()
	if f.ownTransport != nil {
		f.ownTransport.CloseIdleConnections()
	}
	if f.diskCache != nil {
		f.diskCache.release()
		f.diskCache = nil
	}
}
