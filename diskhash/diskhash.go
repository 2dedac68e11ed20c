// Package diskhash computes the digests of a block device's bytes, and of
// ranges of it, with several algorithms in one pass: what `ovfmount verify
// --disks` reports of each decoded disk and partition, as an examiner
// records them.
//
// # What it promises
//
// Every digest is of the bytes the Source's reads return, in order, with
// its holes (as its allocation map reports them) counted as the zeros they
// read as. A range whose bytes could not all be read gets an error and no
// digest: never a digest of part of it.
//
// # Cost
//
// The device is read once, in blocks of up to BlockSize, whatever the
// number of algorithms and ranges. Runs its map calls holes are hashed
// from one shared buffer of zeros, never read; short holes between data
// are read with it, as one request. Reading runs ahead of hashing by a
// few blocks, and every (range, algorithm) pair hashes in its own
// goroutine, since md5, sha1 and sha256 of the same bytes together are
// bound by the CPU, not by the reads. Memory is bounded by the blocks in
// flight (queueDepth of BlockSize).
package diskhash

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
)

// Algorithm is a digest algorithm, by the name the command line and the
// reports use.
type Algorithm string

const (
	MD5    Algorithm = "md5"
	SHA1   Algorithm = "sha1"
	SHA256 Algorithm = "sha256"
	BLAKE3 Algorithm = "blake3"
)

// Algorithms lists the supported algorithms in the order reports list
// them.
var Algorithms = []Algorithm{MD5, SHA1, SHA256, BLAKE3}

// newHash builds each algorithm's hash.
var newHash = map[Algorithm]func() hash.Hash{
	MD5:    md5.New,
	SHA1:   sha1.New,
	SHA256: sha256.New,
	BLAKE3: func() hash.Hash { return blake3.New() },
}

// New returns a fresh hash of the algorithm, or nil for a name that is not
// one of Algorithms (ParseAlgorithms admits none).
func (a Algorithm) New() hash.Hash {
	if f := newHash[a]; f != nil {
		return f()
	}
	return nil
}

// ParseAlgorithms reads a comma-separated list of algorithm names ("md5,
// sha256"), case-insensitive, each once, in the order of Algorithms.
func ParseAlgorithms(s string) ([]Algorithm, error) {
	want := map[Algorithm]bool{}
	for _, f := range strings.Split(s, ",") {
		name := Algorithm(strings.ToLower(strings.TrimSpace(f)))
		if name == "" {
			continue
		}
		if !slices.Contains(Algorithms, name) {
			return nil, fmt.Errorf("unknown hash algorithm %q (known: %s)", f, joinAlgorithms(Algorithms))
		}
		want[name] = true
	}
	var out []Algorithm
	for _, a := range Algorithms {
		if want[a] {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no hash algorithm named (known: %s)", joinAlgorithms(Algorithms))
	}
	return out, nil
}

func joinAlgorithms(as []Algorithm) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// Source is a block device to hash.
type Source interface {
	// Size is its length in bytes.
	Size() int64
	// ReadAt reads exactly len(p) bytes at off, which lie inside it, or
	// fails.
	ReadAt(ctx context.Context, p []byte, off int64) error
	// Runs walks its allocation map over [off, end), calling fn for each
	// run of data or of holes in order until fn returns false. A source
	// that knows no holes reports one run of data.
	Runs(off, end int64, fn func(n int64, data bool) bool) error
}

// Range is a part of the source to digest on its own: the whole device,
// or a partition of it.
type Range struct {
	Off, Len int64
}

// Result is the digests of one range.
type Result struct {
	Range
	// Sums are the digests in the order of the algorithms asked; nil when
	// Err is set.
	Sums [][]byte
	// Err is why the range has no digests.
	Err error
	// Elapsed is the time from the start of the pass to the range's last
	// byte hashed.
	Elapsed time.Duration
}

// BlockSize is the largest read, and the unit handed to the hashes: large
// enough that a decoder's per-read costs and the goroutines' hand-offs are
// small beside the hashing, small enough that queueDepth of them stay a
// few MiB per device.
const BlockSize = 4 << 20

// queueDepth is how many blocks reading may run ahead of the slowest hash.
const queueDepth = 4

// coalesceHole is the longest hole read with the data around it rather
// than hashed from zeros: below it, one read costs less than two.
const coalesceHole = 256 << 10

// zeros is the shared buffer holes are hashed from; never written.
var zeros = make([]byte, BlockSize)

// block is a piece of the source handed to the hashes, released to the
// free list by the last one done with it.
type block struct {
	off  int64
	b    []byte
	refs atomic.Int32
	free chan []byte // nil for a block of zeros
}

func (b *block) release() {
	if b.refs.Add(-1) == 0 && b.free != nil {
		b.free <- b.b[:cap(b.b)]
	}
}

// consumer is one (range, algorithm) pair: a hash fed the range's part of
// every block, in order, by its own goroutine.
type consumer struct {
	r    *rangeState
	h    hash.Hash
	in   chan *block
	done time.Time
}

type rangeState struct {
	Range
	cons   []*consumer
	err    error
	closed bool // its consumers' channels are closed: nothing more is sent
}

// Hash digests each range of src with every algorithm in one pass over
// the union of the ranges, reading each byte once. progress, if set, gets
// the bytes of src passed (read or known to be zeros). Ranges outside src
// get an error. When ctx ends, every range not yet complete gets its error.
func Hash(ctx context.Context, src Source, algs []Algorithm, ranges []Range, progress func(int64)) []Result {
	start := time.Now()
	size := src.Size()
	states := make([]*rangeState, len(ranges))
	var wg sync.WaitGroup
	lo, hi := int64(-1), int64(0)
	for i, r := range ranges {
		st := &rangeState{Range: r}
		states[i] = st
		if r.Off < 0 || r.Len < 0 || r.Off > size || r.Len > size-r.Off {
			st.err = fmt.Errorf("range [%d, +%d) is not inside the %d bytes of the device", r.Off, r.Len, size)
			st.closed = true
			continue
		}
		if lo < 0 || r.Off < lo {
			lo = r.Off
		}
		hi = max(hi, r.Off+r.Len)
		for _, a := range algs {
			c := &consumer{r: st, h: a.New(), in: make(chan *block, queueDepth)}
			st.cons = append(st.cons, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range c.in {
					from := max(c.r.Off, b.off) - b.off
					to := min(c.r.Off+c.r.Len, b.off+int64(len(b.b))) - b.off
					c.h.Write(b.b[from:to])
					b.release()
				}
				c.done = time.Now()
			}()
		}
	}
	closeRange := func(st *rangeState) {
		if !st.closed {
			st.closed = true
			for _, c := range st.cons {
				close(c.in)
			}
		}
	}
	if lo >= 0 {
		p := &pass{ctx: ctx, src: src, states: states, progress: progress, closeRange: closeRange,
			free: make(chan []byte, queueDepth)}
		for range queueDepth {
			p.free <- nil // allocated on first use: a small device needs no 4 MiB buffers
		}
		err := p.run(lo, hi)
		for _, st := range states {
			if !st.closed && err != nil && st.err == nil {
				st.err = err
			}
			closeRange(st)
		}
	}
	wg.Wait()
	out := make([]Result, len(states))
	for i, st := range states {
		out[i] = Result{Range: st.Range, Err: st.err}
		if st.err != nil {
			continue
		}
		end := start
		for _, c := range st.cons {
			out[i].Sums = append(out[i].Sums, c.h.Sum(nil))
			if c.done.After(end) {
				end = c.done
			}
		}
		out[i].Elapsed = end.Sub(start)
	}
	return out
}

// pass is one walk over the source, handing blocks to the ranges.
type pass struct {
	ctx        context.Context
	src        Source
	states     []*rangeState
	progress   func(int64)
	closeRange func(*rangeState)
	free       chan []byte
	// pending is data not yet read: [ps, pe).
	ps, pe int64
	err    error // the walk's fatal error (ctx ended)
}

// run walks [lo, hi), the union of the ranges.
func (p *pass) run(lo, hi int64) error {
	p.ps, p.pe = lo, lo
	off := lo
	err := p.src.Runs(lo, hi, func(n int64, data bool) bool {
		if n <= 0 {
			p.err = fmt.Errorf("allocation map: empty run at %d", off)
			return false
		}
		n = min(n, hi-off)
		switch {
		case data || (n < coalesceHole && p.pe > p.ps):
			p.pe += n
			for p.pe-p.ps >= BlockSize && p.err == nil {
				p.readPending(BlockSize)
			}
		default:
			p.flush()
			for z := int64(0); z < n && p.err == nil; {
				if err := p.ctx.Err(); err != nil {
					p.err = err
					break
				}
				k := min(n-z, BlockSize)
				p.emit(&block{off: off + z, b: zeros[:k]})
				z += k
			}
			p.ps, p.pe = off+n, off+n
		}
		off += n
		return p.err == nil && p.alive() && off < hi
	})
	if p.err == nil && err != nil {
		p.err = fmt.Errorf("allocation map: %w", err)
	}
	if p.err == nil {
		p.flush()
	}
	if p.err == nil && off < hi && p.alive() {
		p.err = fmt.Errorf("allocation map: it ends at %d, before %d", off, hi)
	}
	return p.err
}

func (p *pass) flush() {
	for p.pe > p.ps && p.err == nil {
		p.readPending(min(p.pe-p.ps, BlockSize))
	}
}

// readPending reads the next n pending bytes and hands them on; a read
// error fails the ranges it touches, and the pass goes on for the others.
func (p *pass) readPending(n int64) {
	off := p.ps
	p.ps += n
	if err := p.ctx.Err(); err != nil {
		p.err = err
		return
	}
	if !p.wanted(off, n) {
		return
	}
	buf, ok := <-p.free
	if !ok {
		return
	}
	if buf == nil {
		buf = make([]byte, BlockSize)
	}
	buf = buf[:n]
	if err := p.src.ReadAt(p.ctx, buf, off); err != nil {
		p.free <- buf[:cap(buf)]
		if p.ctx.Err() != nil {
			p.err = p.ctx.Err()
			return
		}
		for _, st := range p.states {
			if !st.closed && overlaps(st.Range, off, n) {
				st.err = fmt.Errorf("read at %d: %w", off, err)
				p.closeRange(st)
			}
		}
		return
	}
	p.emit(&block{off: off, b: buf, free: p.free})
}

// wanted reports whether a live range needs [off, off+n).
func (p *pass) wanted(off, n int64) bool {
	for _, st := range p.states {
		if !st.closed && overlaps(st.Range, off, n) {
			return true
		}
	}
	return false
}

func (p *pass) alive() bool {
	for _, st := range p.states {
		if !st.closed {
			return true
		}
	}
	return false
}

// emit hands b to every live range it overlaps, and closes the ranges it
// completes.
func (p *pass) emit(b *block) {
	n := int64(len(b.b))
	var to []*consumer
	for _, st := range p.states {
		if !st.closed && overlaps(st.Range, b.off, n) {
			to = append(to, st.cons...)
		}
	}
	if len(to) == 0 {
		if b.free != nil {
			b.free <- b.b[:cap(b.b)]
		}
		return
	}
	b.refs.Store(int32(len(to)))
	for _, c := range to {
		c.in <- b
	}
	if p.progress != nil {
		p.progress(n)
	}
	for _, st := range p.states {
		if !st.closed && st.Off+st.Len <= b.off+n {
			p.closeRange(st)
		}
	}
}

func overlaps(r Range, off, n int64) bool {
	return r.Len > 0 && off < r.Off+r.Len && r.Off < off+n
}
