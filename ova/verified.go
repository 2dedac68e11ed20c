package ova

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ovfmount/ovfmount/ova/manifest"
)

// VerifiedFile reads a member through the package's integrity checks
// (see VerifyMode). It implements io.ReaderAt.
type VerifiedFile struct {
	in     *Integrity
	m      *Member
	entry  manifest.Entry
	listed bool
	meta   bool // a manifest or certificate: always readable

	start sync.Once
	done  chan struct{} // closed once verification has concluded

	mu     sync.Mutex
	status Status
	table  *chunkTable
	fail   error
	actual []byte // the digest computed, once the whole file was hashed

	ahead aheadState
}

func (in *Integrity) newFile(m *Member) *VerifiedFile {
	f := &VerifiedFile{in: in, m: m, done: make(chan struct{})}
	lower := strings.ToLower(m.Name)
	f.meta = strings.HasSuffix(lower, ".mf") || strings.HasSuffix(lower, ".cert")
	if in.opts.Mode == VerifyOff {
		f.status = StatusOff
		close(f.done)
		return f
	}
	if rel, ok := in.relName(m); ok && in.mf != nil && !f.meta {
		f.entry, f.listed = in.mf.Lookup(rel)
	}
	switch {
	case f.meta && strings.HasSuffix(lower, ".mf") && strings.HasPrefix(in.sig.State, "ok"):
		f.status = StatusVerified // the signature covers it
		close(f.done)
	case !f.listed:
		f.status = StatusUnlisted
		close(f.done)
	default:
		f.status = StatusPending
		if t := in.tables[m.Name]; t != nil && t.Size == m.Size && t.Algorithm == string(f.entry.Algorithm) &&
			bytes.Equal(t.Digest, f.entry.Digest) {
			f.status, f.table = StatusVerified, t
			close(f.done)
			f.start.Do(func() {})
			in.event(Event{File: m.Name, Status: StatusVerified, Algorithm: t.Algorithm, Expected: hex.EncodeToString(t.Digest),
				Actual: hex.EncodeToString(t.Digest), Chunk: -1, Cached: true})
		}
	}
	return f
}

// Member is the archive member read.
func (f *VerifiedFile) Member() *Member { return f.m }

// Size is the member's size.
func (f *VerifiedFile) Size() int64 { return f.m.Size }

// Status is the file's verification state now.
func (f *VerifiedFile) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// Digest is the manifest's digest for the file as "ALG:hex", or "".
func (f *VerifiedFile) Digest() string {
	if !f.listed {
		return ""
	}
	return string(f.entry.Algorithm) + ":" + hex.EncodeToString(f.entry.Digest)
}

// Listed reports whether the manifest lists the file.
func (f *VerifiedFile) Listed() bool { return f.listed }

// Algorithm is the manifest's algorithm for the file ("" if unlisted).
func (f *VerifiedFile) Algorithm() string { return string(f.entry.Algorithm) }

// Expected is the manifest's digest in hex ("" if unlisted).
func (f *VerifiedFile) Expected() string {
	if !f.listed {
		return ""
	}
	return hex.EncodeToString(f.entry.Digest)
}

// Actual is the digest computed over the whole file, in hex, once it was
// hashed ("" before, and for a file trusted from an earlier run's table,
// whose digest matched then: Expected).
func (f *VerifiedFile) Actual() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.actual == nil && f.table != nil {
		return hex.EncodeToString(f.table.Digest)
	}
	return hex.EncodeToString(f.actual)
}

// Start begins verifying the file in the background, once; the mount calls
// it when the file is first opened.
func (f *VerifiedFile) Start() {
	f.start.Do(func() {
		if f.Status() != StatusPending {
			return
		}
		go f.verify(nil)
	})
}

// Wait blocks until the file's verification has concluded or ctx ends.
func (f *VerifiedFile) Wait(ctx context.Context) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// route is how a read of the file is served at this moment.
type route int

const (
	routeDirect  route = iota // straight from the member, unchecked
	routeChecked              // chunk by chunk against the trusted table
	routeWait                 // after verification concludes (strict)
)

// route decides, from the mode and the file's state, how a read is served
// now, or the error every read gets. ReadAtContext, CheckedSpan and
// NeedsCheck all follow it, so the three cannot disagree.
func (f *VerifiedFile) route() (route, error) {
	mode := f.in.opts.Mode
	if mode == VerifyOff || f.meta {
		return routeDirect, nil
	}
	if !f.listed {
		if mode == VerifyStrict && !f.in.opts.AllowUnlisted {
			return 0, fmt.Errorf("ova: %s: %w (strict verification; --allow-unlisted serves it)", f.m.Name, ErrUnlisted)
		}
		return routeDirect, nil
	}
	if mode == VerifyStrict && f.in.sig.State == "bad" {
		return 0, fmt.Errorf("ova: %s: %w: %v", f.m.Name, ErrBadSignature, f.in.sig.Err)
	}
	f.mu.Lock()
	st, fail := f.status, f.fail
	f.mu.Unlock()
	switch {
	case st == StatusMismatch:
		return 0, fail
	case st == StatusVerified:
		return routeChecked, nil
	case mode == VerifyLazy:
		// Served at once. The check starts when the file is opened
		// (Start), not on any read: reading a disk's header to build its
		// view at mount time must not hash the whole disk.
		return routeDirect, nil
	}
	return routeWait, nil
}

// NeedsCheck reports whether reads must pass through ReadAt: false when
// the bytes may go straight from the archive to the reader (verification
// off, an unlisted file that may be read, or a lazy mount whose
// verification is still pending).
func (f *VerifiedFile) NeedsCheck() bool {
	r, err := f.route()
	return err != nil || r != routeDirect
}

// ReadAt reads the member's bytes under the integrity checks.
func (f *VerifiedFile) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that gives up waiting for verification when ctx
// ends (an interrupted read).
func (f *VerifiedFile) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	for {
		r, err := f.route()
		switch {
		case err != nil:
			return 0, err
		case r == routeDirect:
			return f.m.ReadAt(p, off)
		case r == routeChecked:
			return f.checkedRead(p, off)
		}
		f.Start()
		if err := f.Wait(ctx); err != nil {
			return 0, err
		}
	}
}

// checkedRead reads whole chunks, checks each against the trusted table,
// and copies out only bytes that passed.
func (f *VerifiedFile) checkedRead(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ova: %s: negative offset", f.m.Name)
	}
	if off >= f.m.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.m.Size-off))
	sp, err := f.checkedSpan(off, n)
	if err != nil {
		return 0, err
	}
	at := 0
	for _, b := range sp.Slices {
		at += copy(p[at:], b)
	}
	sp.Release()
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// checkedChunk returns chunk c read and checked against the trusted table,
// with a reference the caller must release. Concurrent readers of a chunk
// (the kernel's read-ahead requests straddle chunks) share one check.
func (f *VerifiedFile) checkedChunk(c int) (*cachedChunk, error) {
	return recent.get(f, c, func() ([]byte, error) {
		start := int64(c) * ChunkSize
		buf := getChunkBuf(int(min(ChunkSize, f.m.Size-start)))
		if _, err := f.m.ReadAt(buf, start); err != nil && err != io.EOF {
			putChunkBuf(buf)
			return nil, err
		}
		if sum := sumChunk(buf); sum != f.table.Chunks[c] {
			putChunkBuf(buf)
			return nil, f.mismatch(c, f.table.Chunks[c][:], sum[:], chunkAlgorithm)
		}
		return buf, nil
	})
}

// mismatch marks the file damaged for good, reports it once, and returns
// the error every read of the file gets from now on.
func (f *VerifiedFile) mismatch(chunk int, want, got []byte, alg string) error {
	where, source := "the file", "the manifest"
	if chunk >= 0 {
		where = fmt.Sprintf("chunk %d (bytes %d-%d)", chunk, int64(chunk)*ChunkSize, min(int64(chunk+1)*ChunkSize, f.m.Size)-1)
		source = "its table from verification"
	}
	err := fmt.Errorf("ova: %s: %s digest of %s is %x, %s says %x: %w", f.m.Name, alg, where, got, source, want, ErrMismatch)
	f.mu.Lock()
	first := f.status != StatusMismatch
	f.status, f.fail = StatusMismatch, err
	f.mu.Unlock()
	if first {
		f.in.event(Event{File: f.m.Name, Status: StatusMismatch, Algorithm: alg, Expected: hex.EncodeToString(want),
			Actual: hex.EncodeToString(got), Chunk: chunk, Err: err})
	}
	return err
}

// verify hashes the whole file: its manifest digest, and a BLAKE3 of
// each chunk for the table later reads are checked against (see
// hashPass). progress, if set, gets the bytes hashed as they go.
func (f *VerifiedFile) verify(progress func(int64)) {
	defer close(f.done)
	f.in.sem <- struct{}{}
	defer func() { <-f.in.sem }()

	size := f.m.Size
	n := int((size + ChunkSize - 1) / ChunkSize)
	chunks := make([]chunkDigest, n)
	h := f.entry.Algorithm.New()
	if h == nil {
		f.mismatch(-1, f.entry.Digest, nil, string(f.entry.Algorithm))
		return
	}
	readErr := (&hashPass{r: f.m, size: size, h: h, chunks: chunks, progress: progress}).run()
	if readErr != nil {
		err := fmt.Errorf("ova: %s: cannot be verified: %w", f.m.Name, readErr)
		f.mu.Lock()
		f.status, f.fail = StatusMismatch, err
		f.mu.Unlock()
		f.in.event(Event{File: f.m.Name, Status: StatusMismatch, Algorithm: string(f.entry.Algorithm),
			Expected: hex.EncodeToString(f.entry.Digest), Chunk: -1, Err: err})
		return
	}
	got := h.Sum(nil)
	f.mu.Lock()
	f.actual = got
	f.mu.Unlock()
	if !bytes.Equal(got, f.entry.Digest) {
		f.mismatch(-1, f.entry.Digest, got, string(f.entry.Algorithm))
		return
	}
	t := &chunkTable{Name: f.m.Name, Size: size, Algorithm: string(f.entry.Algorithm), Digest: f.entry.Digest, Chunks: chunks}
	f.mu.Lock()
	f.status, f.table = StatusVerified, t
	f.mu.Unlock()
	ev := Event{File: f.m.Name, Status: StatusVerified, Algorithm: t.Algorithm, Expected: hex.EncodeToString(got),
		Actual: hex.EncodeToString(got), Chunk: -1}
	if err := f.in.trusted(t); err != nil {
		ev.Err = fmt.Errorf("verified, but the chunk table could not be kept: %w", err)
	}
	f.in.event(ev)
}

// recent keeps recently verified chunks for a second, so that readers that
// ask for one chunk in pieces (a disk decoder reading grain by grain, or
// the kernel's read-ahead requests, which straddle chunks) check it once,
// while a chunk damaged on disk after it was read is caught within a
// second. It holds at most recentChunks chunks (recentChunks MiB), plus
// those readers are still copying from.
var recent = &chunkCache{entries: map[chunkKey]*cachedChunk{}}

const (
	recentChunks = 32
	recentLife   = int64(1e9) // nanoseconds
)

// chunkBufs recycles chunk buffers: a fresh 1 MiB buffer per chunk costs
// as much in zeroing and garbage collection as a fifth of its hashing.
var chunkBufs = sync.Pool{New: func() any { return new([ChunkSize]byte) }}

func getChunkBuf(n int) []byte { return chunkBufs.Get().(*[ChunkSize]byte)[:n] }

func putChunkBuf(b []byte) { chunkBufs.Put((*[ChunkSize]byte)(b[:ChunkSize])) }

type chunkKey struct {
	f *VerifiedFile
	c int
}

type chunkCache struct {
	mu      sync.Mutex
	entries map[chunkKey]*cachedChunk // the current entry of each chunk
	order   []*cachedChunk            // every entry the cache holds, oldest first
}

// A cachedChunk's buffer goes back to chunkBufs when its last holder lets
// go: the cache, while the entry is in order, and each reader between get
// and release.
type cachedChunk struct {
	key  chunkKey
	done chan struct{}
	data []byte
	err  error
	at   int64
	refs int // guarded by chunkCache.mu
}

// get returns the entry of chunk c of f, checking the chunk with load
// unless it was checked within the last second or is being checked now.
// load returns a buffer from getChunkBuf. On success the caller owns a
// reference and must release it once it has copied the data.
func (cc *chunkCache) get(f *VerifiedFile, c int, load func() ([]byte, error)) (*cachedChunk, error) {
	key := chunkKey{f, c}
	now := nowNano()
	cc.mu.Lock()
	if e := cc.entries[key]; e != nil && e.fresh(now) {
		e.refs++
		cc.mu.Unlock()
		<-e.done
		if e.err != nil {
			cc.release(e)
			return nil, e.err
		}
		return e, nil
	}
	e := &cachedChunk{key: key, done: make(chan struct{}), refs: 2}
	cc.entries[key] = e
	cc.order = append(cc.order, e)
	for len(cc.order) > recentChunks {
		old := cc.order[0]
		cc.order = cc.order[1:]
		if cc.entries[old.key] == old {
			delete(cc.entries, old.key)
		}
		cc.unref(old)
	}
	cc.mu.Unlock()

	data, err := load()
	cc.mu.Lock()
	e.data, e.err, e.at = data, err, nowNano()
	if err != nil && cc.entries[key] == e {
		delete(cc.entries, key) // a failure is not remembered
	}
	cc.mu.Unlock()
	close(e.done)
	if err != nil {
		cc.release(e)
		return nil, err
	}
	return e, nil
}

// fresh reports whether get may hand out e rather than check the chunk
// again: it is being checked, or was checked within recentLife. cc.mu is
// held.
func (e *cachedChunk) fresh(now int64) bool { return e.at == 0 || now-e.at < recentLife }

// release drops a reference that get returned.
func (cc *chunkCache) release(e *cachedChunk) {
	cc.mu.Lock()
	cc.unref(e)
	cc.mu.Unlock()
}

// unref drops one reference, with cc.mu held.
func (cc *chunkCache) unref(e *cachedChunk) {
	if e.refs--; e.refs == 0 && e.data != nil {
		putChunkBuf(e.data)
		e.data = nil
	}
}
