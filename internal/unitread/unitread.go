// Package unitread serves random reads over a stream that is a sequence of
// independently decodable units (xz blocks, zstd frames) whose
// decompressed sizes are known. It is the part that xzindex and zstdindex
// share: which unit covers an offset, and a small set of decoders kept
// where earlier reads left them, so that a sequential reader decodes each
// unit once and concurrent readers share the decoders safely.
package unitread

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"

	"github.com/ovfmount/ovfmount/lru"
)

const (
	// bufSize is a cursor's output buffer. Besides serving the read it
	// keeps the most recent output, so re-reads and small backward steps
	// (readahead arriving out of order) cost no decoding.
	bufSize = 512 << 10
	// keep is how much of the buffer's tail survives a slide.
	keep = 128 << 10
	// PieceSize is the size of the decoded pieces the cache keeps,
	// aligned in their unit. A cursor's buffer holds at least two, so
	// that a slide never drops a piece not yet offered to the cache.
	PieceSize = 256 << 10
)

// pieceKey names a cached piece: a unit and a piece in it.
type pieceKey struct {
	unit  int
	piece int64
}

// Unit is one independently decodable piece of the decompressed stream.
type Unit struct {
	Off int64 // decompressed offset
	Len int64 // decompressed length, > 0
}

// OpenFunc returns a decoder of unit i, positioned at its first byte. It
// must yield exactly the unit's Len bytes and then io.EOF, verifying what
// the format lets it verify once the unit's end is read. old is a decoder
// that an earlier call returned and that is no longer used, or nil; the
// function may reset and return it instead of allocating a new one.
type OpenFunc func(i int, old io.Reader) (io.Reader, error)

// Reader is an io.ReaderAt over the units. It is safe for concurrent use.
type Reader struct {
	units   []Unit
	open    OpenFunc
	name    string
	size    int64
	max     int
	corrupt error
	cache   *lru.Cache[pieceKey, []byte]

	mu    sync.Mutex
	cond  sync.Cond
	curs  []*cursor
	clock uint64
}

type cursor struct {
	unit  int
	dec   io.Reader
	buf   []byte
	base  int64 // unit-relative offset of buf[0]
	n     int   // buf[:n] is decoded output
	ok    bool  // unit, base, n and dec are valid
	busy  bool
	until int64 // while busy: the absolute offset the read leaves it at
	used  uint64
	kept  bool
	// offered is the unit-relative end of the pieces offered to the
	// cache so far.
	offered int64
}

// start and end are the absolute offsets the cursor's buffer covers.
func (c *cursor) start(u []Unit) int64 { return u[c.unit].Off + c.base }
func (c *cursor) end(u []Unit) int64   { return u[c.unit].Off + c.base + int64(c.n) }

// Config describes the units and how to decode them.
type Config struct {
	// Name prefixes error messages.
	Name string
	// Units must be contiguous from offset 0 and each non-empty.
	Units []Unit
	// Open returns a unit's decoder.
	Open OpenFunc
	// Corrupt is the error wrapped when a decoder yields more or fewer
	// bytes than its unit's length.
	Corrupt error
	// Decoders is how many decoders the Reader keeps between reads (at
	// least 1).
	Decoders int
	// CacheBytes is the budget of a cache of recently decoded pieces
	// (PieceSize bytes, aligned in their unit), which serves re-reads
	// that no decoder's buffer holds any more; 0 for none.
	CacheBytes int
}

// New returns a Reader over the units cfg describes.
func New(cfg Config) *Reader {
	r := &Reader{units: cfg.Units, open: cfg.Open, name: cfg.Name, max: max(1, cfg.Decoders), corrupt: cfg.Corrupt}
	if cfg.CacheBytes >= PieceSize {
		r.cache = lru.New[pieceKey, []byte](cfg.CacheBytes)
	}
	units := cfg.Units
	if len(units) > 0 {
		last := units[len(units)-1]
		r.size = last.Off + last.Len
	}
	r.cond.L = &r.mu
	return r
}

// Size is the decompressed size.
func (r *Reader) Size() int64 { return r.size }

// Find returns the index of the unit holding offset off, which must be in
// [0, Size()).
func (r *Reader) Find(off int64) int {
	return sort.Search(len(r.units), func(i int) bool { return r.units[i].Off+r.units[i].Len > off })
}

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", r.name, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), r.size-off)]
	n := 0
	for n < len(want) {
		at := off + int64(n)
		i := r.Find(at)
		u := r.units[i]
		if k := r.cached(want[n:], i, at); k > 0 {
			n += k
			continue
		}
		end := min(off+int64(len(want)), u.Off+u.Len)
		c, restart := r.acquire(i, at, end)
		k, err := c.read(r, want[n:n+int(end-at)], at, restart)
		r.release(c, err == nil)
		n += k
		if err != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// cached copies into p what the cache holds of the piece of unit i at
// absolute offset at, returning how much.
func (r *Reader) cached(p []byte, i int, at int64) int {
	if r.cache == nil {
		return 0
	}
	u := r.units[i]
	rel := at - u.Off
	piece, ok := r.cache.Get(pieceKey{i, rel / PieceSize})
	if !ok {
		return 0
	}
	return copy(p, piece[rel%PieceSize:])
}

// offer puts the pieces of the cursor's unit that its buffer completes
// into the cache.
func (c *cursor) offer(r *Reader, u Unit) {
	end := c.base + int64(c.n)
	for {
		ps := c.offered
		pe := min(ps+PieceSize, u.Len)
		if pe > end || ps >= u.Len {
			return
		}
		if ps >= c.base {
			r.cache.Put(pieceKey{c.unit, ps / PieceSize}, bytes.Clone(c.buf[ps-c.base:pe-c.base]), int(pe-ps))
		}
		c.offered = pe
	}
}

// cost is how many bytes c must decode before it reaches off in unit i,
// and whether it can at all. A busy cursor is judged by where its read
// will leave it.
func (c *cursor) cost(u []Unit, i int, off int64) (int64, bool) {
	if !c.ok || c.unit != i {
		return 0, false
	}
	if c.busy {
		switch {
		case off >= c.until:
			return off - c.until, true
		case off >= c.until-keep:
			return 0, true
		}
		return 0, false
	}
	if off < c.start(u) {
		return 0, false
	}
	return max(0, off-c.end(u)), true
}

// acquire picks the cursor for a read of [off, end) inside unit i and
// marks it busy; restart says it must start decoding the unit afresh.
func (r *Reader) acquire(i int, off, end int64) (*cursor, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	restart := off - r.units[i].Off
	for {
		var idle, busy *cursor
		idleCost, busyCost := int64(math.MaxInt64), int64(math.MaxInt64)
		for _, c := range r.curs {
			cost, ok := c.cost(r.units, i, off)
			switch {
			case !ok:
			case c.busy && cost < busyCost:
				busy, busyCost = c, cost
			case !c.busy && cost < idleCost:
				idle, idleCost = c, cost
			}
		}
		switch {
		case idle != nil && idleCost <= restart && idleCost <= busyCost:
			idle.busy, idle.until = true, end
			return idle, false
		case busy != nil && busyCost < restart && busyCost < idleCost:
			r.cond.Wait()
			continue
		}
		c := r.spare()
		// unit, ok, busy and until are what cost reads of a busy cursor:
		// they change only under the lock.
		c.unit, c.ok, c.busy, c.until = i, true, true, end
		return c, true
	}
}

// spare returns an idle cursor to restart: a new one while the Reader
// keeps fewer than its maximum, else the least recently used idle one,
// else (all busy) one made for this read only.
func (r *Reader) spare() *cursor {
	if len(r.curs) < r.max {
		c := &cursor{kept: true}
		r.curs = append(r.curs, c)
		return c
	}
	var lru *cursor
	for _, c := range r.curs {
		if !c.busy && (lru == nil || c.used < lru.used) {
			lru = c
		}
	}
	if lru != nil {
		return lru
	}
	return &cursor{}
}

func (r *Reader) release(c *cursor, ok bool) {
	r.mu.Lock()
	c.busy = false
	c.ok = ok
	r.clock++
	c.used = r.clock
	if !ok {
		c.used = 0 // a failed cursor is the first to reuse
	}
	if !c.kept {
		c.dec, c.buf = nil, nil
	}
	r.cond.Broadcast()
	r.mu.Unlock()
}

// read fills p with the bytes at absolute offset off, all inside the
// cursor's unit, first restarting the unit's decoder if restart.
func (c *cursor) read(r *Reader, p []byte, off int64, restart bool) (int, error) {
	i := r.Find(off)
	u := r.units[i]
	if restart {
		dec, err := r.open(i, c.dec)
		if err != nil {
			c.dec = nil
			return 0, err
		}
		c.dec, c.base, c.n, c.offered = dec, 0, 0, 0
		if c.buf == nil {
			c.buf = make([]byte, min(bufSize, u.Len))
		} else if int64(len(c.buf)) < min(bufSize, u.Len) {
			c.buf = make([]byte, min(bufSize, u.Len))
		}
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if s, e := c.start(r.units), c.end(r.units); at >= s && at < e {
			n += copy(p[n:], c.buf[at-s:c.n])
			continue
		}
		if err := c.fill(r, u); err != nil {
			return n, err
		}
	}
	return n, nil
}

// fill decodes more of the cursor's unit into its buffer, sliding the
// buffer first when it is full.
func (c *cursor) fill(r *Reader, u Unit) error {
	done := c.base + int64(c.n)
	if done >= u.Len {
		return fmt.Errorf("%s: unit %d: %w", r.name, c.unit, io.ErrUnexpectedEOF)
	}
	if c.n == len(c.buf) {
		k := min(keep, c.n)
		if r.cache != nil {
			// Keep the piece not yet complete, to offer it whole.
			k = max(k, int(done-c.offered))
		}
		copy(c.buf, c.buf[c.n-k:c.n])
		c.base += int64(c.n - k)
		c.n = k
	}
	room := c.buf[c.n:min(len(c.buf), c.n+int(min(int64(len(c.buf)-c.n), u.Len-done)))]
	k, err := io.ReadAtLeast(c.dec, room, 1)
	c.n += k
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%s: unit %d ends after %d of %d bytes: %w", r.name, c.unit, c.base+int64(c.n), u.Len, r.corrupt)
	}
	if err != nil {
		return err
	}
	if c.base+int64(c.n) == u.Len {
		// The unit's end: the decoder must end here too, and verifies
		// what it can while reading its end.
		var one [1]byte
		k, err := io.ReadAtLeast(c.dec, one[:], 1)
		switch {
		case k > 0:
			return fmt.Errorf("%s: unit %d decodes to more than its %d bytes: %w", r.name, c.unit, u.Len, r.corrupt)
		case err != io.EOF:
			return err
		}
	}
	// Offered only now, so that a unit's last piece is cached once its
	// end is verified: a failed check is not forgotten by a retry.
	if r.cache != nil {
		c.offer(r, u)
	}
	return nil
}
