package integrity

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/manifest"
	"github.com/ovfmount/ovfmount/route"
)

// File reads a member through the package's checks (see Mode). It
// implements io.ReaderAt, route.ContextReaderAt and route.Ranger.
type File struct {
	c       *Checks
	m       *ova.Member
	entry   manifest.Entry
	listed  bool
	meta    bool // the package's own manifest or certificate: always readable
	foreign bool // another package's manifest or certificate

	start sync.Once
	done  chan struct{} // closed once verification has concluded

	mu     sync.Mutex
	status Status
	table  *chunkTable
	fail   error
	actual []byte // the digest computed, once the whole file was hashed
	cached bool   // verified by an earlier run's chunk table, not hashed here

	ahead aheadState
}

func (c *Checks) newFile(m *ova.Member, foreign bool) *File {
	f := &File{c: c, m: m, done: make(chan struct{}), foreign: foreign}
	f.meta = m == c.p.Manifest || m == c.p.Cert
	if rel, ok := c.relName(m); ok && c.mf != nil && !f.meta {
		f.entry, f.listed = c.mf.Lookup(rel)
	}
	switch {
	case c.opts.Mode == Off:
		f.conclude(StatusOff)
	case f.meta:
		f.status = StatusMeta // settled once the signature is known
	case !f.listed && foreign:
		f.conclude(StatusForeign)
	case !f.listed:
		f.conclude(StatusUnlisted)
	default:
		f.status = StatusPending
		if t := c.tables[m.Name]; t != nil && t.Size == m.Size && t.Algorithm == string(f.entry.Algorithm) &&
			bytes.Equal(t.Digest, f.entry.Digest) {
			f.table, f.cached = t, true
			f.start.Do(func() {})
			f.conclude(StatusVerified)
			c.event(Event{File: m.Name, Status: StatusVerified, Algorithm: t.Algorithm, Expected: hex.EncodeToString(t.Digest),
				Actual: hex.EncodeToString(t.Digest), Piece: -1, Cached: true})
		}
	}
	return f
}

// conclude sets a final state for a file that is never hashed.
func (f *File) conclude(s Status) {
	f.status = s
	close(f.done)
}

// settle gives the package's own manifest its state once the signature is
// known: verified when a valid signature vouches for it and the package.
func (f *File) settle() {
	if !f.meta || f.c.opts.Mode == Off {
		return
	}
	st := StatusMeta
	if f.m == f.c.p.Manifest && f.c.sig.Valid() {
		st = StatusVerified
	}
	f.conclude(st)
}

// Member is the archive member read.
func (f *File) Member() *ova.Member { return f.m }

// Size is the member's size.
func (f *File) Size() int64 { return f.m.Size }

// Status is the file's verification state now.
func (f *File) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// Digest is the manifest's digest for the file as "ALG:hex", or "".
func (f *File) Digest() string {
	if !f.listed {
		return ""
	}
	return string(f.entry.Algorithm) + ":" + hex.EncodeToString(f.entry.Digest)
}

// Listed reports whether the package's manifest lists the file.
func (f *File) Listed() bool { return f.listed }

// Algorithm is the manifest's algorithm for the file ("" if unlisted).
func (f *File) Algorithm() string { return string(f.entry.Algorithm) }

// Expected is the manifest's digest in hex ("" if unlisted).
func (f *File) Expected() string {
	if !f.listed {
		return ""
	}
	return hex.EncodeToString(f.entry.Digest)
}

// Actual is the digest computed over the whole file, in hex, once it was
// hashed; for a file trusted from an earlier run's chunk table (Cached),
// the digest that run computed.
func (f *File) Actual() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.actual == nil && f.table != nil {
		return hex.EncodeToString(f.table.Digest)
	}
	return hex.EncodeToString(f.actual)
}

// Cached reports that the file was taken as verified from an earlier
// run's chunk table, without being read here.
func (f *File) Cached() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cached
}

// Start begins verifying the file in the background, once; the mount calls
// it when the file is first opened or read.
func (f *File) Start() {
	f.start.Do(func() {
		if f.Status() != StatusPending {
			return
		}
		go f.verify(context.Background(), nil)
	})
}

// Wait blocks until the file's verification has concluded or ctx ends.
func (f *File) Wait(ctx context.Context) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// way is how a read of the file is served at this moment.
type way int

const (
	direct  way = iota // straight from the member, unchecked
	checked            // piece by piece against the trusted table
	wait               // after verification concludes (strict)
)

// way decides, from the mode and the file's state, how a read is served
// now, or the error every read gets. Every read asks it once.
func (f *File) way() (way, error) {
	c := f.c
	mode := c.opts.Mode
	if mode == Off || f.meta {
		return direct, nil
	}
	if !f.listed {
		if mode == Strict && !c.opts.AllowUnlisted {
			return 0, fmt.Errorf("integrity: %s: %w (strict verification; --allow-unlisted serves it)", f.m.Name, ErrUnlisted)
		}
		return direct, nil
	}
	if mode == Strict {
		switch {
		case c.sig.State == "bad":
			return 0, fmt.Errorf("integrity: %s: %w: %v", f.m.Name, ErrBadSignature, c.sig.Err)
		case c.opts.RequireTrustedSigner && c.sig.State != "ok":
			return 0, fmt.Errorf("integrity: %s: %w (--require-trusted-signer); the package's signature is %s", f.m.Name, ErrUnsigned, c.sig.State)
		}
	}
	f.mu.Lock()
	st, fail := f.status, f.fail
	f.mu.Unlock()
	switch {
	case st == StatusMismatch:
		return 0, fail
	case st == StatusVerified:
		return checked, nil
	case mode == Lazy:
		// Served at once. The check starts when the file is opened or
		// read through the mount (Start), not on any read: reading a
		// disk's header to build its view must not hash the whole disk.
		return direct, nil
	}
	return wait, nil
}

// Route answers a read of len(p) bytes at off, the one decision per read:
// host ranges of the archive (when splice is allowed and nothing must be
// checked), the buffers its bytes were checked in (a verified file; see
// checkedSpan for the two ways they are read), or bytes read into p. A
// strict read waits for verification, or until ctx ends.
func (f *File) Route(ctx context.Context, p []byte, off int64, splice bool) (route.Reply, error) {
	for {
		w, err := f.way()
		switch {
		case err != nil:
			return route.Reply{}, err
		case w == direct:
			if splice {
				if rs, ok := f.m.HostRanges(off, len(p)); ok {
					return route.Spliced(rs), nil
				}
			}
			n, err := f.m.ReadAt(p, off)
			if n < len(p) && err == nil {
				err = io.ErrUnexpectedEOF
			}
			if n < len(p) {
				return route.Reply{}, err
			}
			return route.Bytes(p), nil
		case w == checked:
			sp, err := f.checkedSpan(off, len(p))
			if err != nil {
				return route.Reply{}, err
			}
			return route.Held(sp.Slices, sp.Release), nil
		}
		f.Start()
		if err := f.Wait(ctx); err != nil {
			return route.Reply{}, err
		}
		if f.Status() == StatusPending {
			// Its verification was abandoned (an interrupted VerifyAll):
			// nothing was concluded, and nothing will be.
			return route.Reply{}, fmt.Errorf("integrity: %s: its verification was interrupted, so it cannot be served unverified", f.m.Name)
		}
	}
}

// Proven implements route.Prover: every read of a verified file is
// checked against its piece table before a byte of it is returned. A
// file that is not verified (yet), unlisted, or read with checks off
// is not proven.
func (f *File) Proven() bool {
	w, err := f.way()
	return err == nil && w == checked
}

// HostRanges implements route.Ranger: the member's host ranges, when its
// bytes may go to the reader unread (nothing to check now).
func (f *File) HostRanges(off int64, n int) ([]route.Range, bool) {
	if w, err := f.way(); err != nil || w != direct {
		return nil, false
	}
	return f.m.HostRanges(off, n)
}

// ReadAt reads the member's bytes under the checks.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that gives up waiting for verification when ctx
// ends (an interrupted read).
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("integrity: %s: negative offset", f.m.Name)
	}
	if off >= f.m.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.m.Size-off))
	r, err := f.Route(ctx, p[:n], off, false)
	if err != nil {
		return 0, err
	}
	r.CopyTo(p[:n])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// checkedChunk returns chunk c read and checked against the trusted table,
// piece by piece, with a reference the caller must release. Concurrent
// readers of a chunk (the kernel's read-ahead requests straddle chunks)
// share one check.
func (f *File) checkedChunk(c int) (*cachedChunk, error) {
	return recent.get(f, c, func() ([]byte, error) {
		start := int64(c) * ChunkSize
		buf := getChunkBuf(int(min(ChunkSize, f.m.Size-start)))
		if _, err := f.m.ReadAt(buf, start); err != nil && err != io.EOF {
			putChunkBuf(buf)
			return nil, err
		}
		if err := f.checkPieces(buf, c*piecesPerChunk); err != nil {
			putChunkBuf(buf)
			return nil, err
		}
		return buf, nil
	})
}

// checkPieces checks b, the file's bytes from the start of piece first on
// (whole pieces, but for the file's last), against the trusted table.
func (f *File) checkPieces(b []byte, first int) error {
	h := pieceHashers.Get().(*pieceHasher)
	defer pieceHashers.Put(h)
	for i := 0; i*PieceSize < len(b); i++ {
		p := first + i
		if sum := h.sum(b[i*PieceSize : min((i+1)*PieceSize, len(b))]); sum != f.table.Pieces[p] {
			return f.mismatch(p, f.table.Pieces[p][:], sum[:], chunkAlgorithm)
		}
	}
	return nil
}

// mismatch marks the file damaged for good, reports it once, and returns
// the error every read of the file gets from now on. piece is the piece
// whose digest differs from the table, or -1 for the whole file's
// manifest digest.
func (f *File) mismatch(piece int, want, got []byte, alg string) error {
	where, source := "the file", "the manifest"
	if piece >= 0 {
		where = fmt.Sprintf("piece %d (bytes %d-%d)", piece, int64(piece)*PieceSize, min(int64(piece+1)*PieceSize, f.m.Size)-1)
		source = "its table from verification"
	}
	err := fmt.Errorf("integrity: %s: %s digest of %s is %x, %s says %x: %w", f.m.Name, alg, where, got, source, want, ErrMismatch)
	f.mu.Lock()
	first := f.status != StatusMismatch
	f.status, f.fail = StatusMismatch, err
	f.mu.Unlock()
	if first {
		f.c.event(Event{File: f.m.Name, Status: StatusMismatch, Algorithm: alg, Expected: hex.EncodeToString(want),
			Actual: hex.EncodeToString(got), Piece: piece, Err: err})
	}
	return err
}

// verify hashes the whole file: its manifest digest, and a BLAKE3 of each
// piece for the table later reads are checked against (see hashPass).
// progress, if set, gets the bytes hashed as they go. When ctx ends first
// the file stays pending: nothing was concluded.
func (f *File) verify(ctx context.Context, progress func(int64)) {
	defer close(f.done)
	select {
	case f.c.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-f.c.sem }()

	size := f.m.Size
	pieces := make([]pieceDigest, pieceCount(size))
	h := f.entry.Algorithm.New()
	if h == nil {
		f.mismatch(-1, f.entry.Digest, nil, string(f.entry.Algorithm))
		return
	}
	readErr := (&hashPass{ctx: ctx, r: f.m, size: size, h: h, pieces: pieces, progress: progress}).run()
	if ctx.Err() != nil {
		return
	}
	if readErr != nil {
		err := fmt.Errorf("integrity: %s: cannot be verified: %w", f.m.Name, readErr)
		f.mu.Lock()
		f.status, f.fail = StatusMismatch, err
		f.mu.Unlock()
		f.c.event(Event{File: f.m.Name, Status: StatusMismatch, Algorithm: string(f.entry.Algorithm),
			Expected: hex.EncodeToString(f.entry.Digest), Piece: -1, Err: err})
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
	t := &chunkTable{Name: f.m.Name, Size: size, Algorithm: string(f.entry.Algorithm), Digest: f.entry.Digest, Pieces: pieces}
	f.mu.Lock()
	f.status, f.table = StatusVerified, t
	f.mu.Unlock()
	ev := Event{File: f.m.Name, Status: StatusVerified, Algorithm: t.Algorithm, Expected: hex.EncodeToString(got),
		Actual: hex.EncodeToString(got), Piece: -1}
	if err := f.c.trusted(t); err != nil {
		ev.Err = fmt.Errorf("verified, but the chunk table could not be kept: %w", err)
	}
	f.c.event(ev)
}

// digest is the file's manifest digest, for the signature's binding: from
// its verification where checks are on (which also verifies the file),
// hashed here otherwise.
func (f *File) digest() ([]byte, error) {
	if f.c.opts.Mode != Off {
		started := false
		f.start.Do(func() { started = true })
		if started && f.Status() == StatusPending {
			f.verify(context.Background(), nil)
		}
		<-f.done
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case f.status == StatusVerified && f.actual == nil && f.table != nil:
			return f.table.Digest, nil
		case f.actual != nil:
			return f.actual, nil
		case f.fail != nil:
			return nil, f.fail
		}
		return nil, fmt.Errorf("%s was not hashed", f.m.Name)
	}
	h := f.entry.Algorithm.New()
	if h == nil {
		return nil, fmt.Errorf("unknown algorithm %s", f.entry.Algorithm)
	}
	if _, err := io.Copy(h, f.m.Open()); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
