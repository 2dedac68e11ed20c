package vdisk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// image is the shared read path over one format's block map.
type image struct {
	m     formatMapper
	size  int64
	cache *Cache
	ra    readAhead

	allocOnce sync.Once
	alloc     int64
	allocErr  error

	name     string          // Options.Name, for errors
	onDamage func(err error) // Options.OnDamage
	damaged  atomic.Pointer[error]

	// served holds the units a read was served from the head of (see
	// readPrefix) that no whole decode has checked yet.
	servedMu sync.Mutex
	served   map[unitKey]struct{}
}

func newImage(m formatMapper, c *Cache) *image {
	return &image{m: m, size: m.Size(), cache: c}
}

// Damaged returns the error that damaged the image, or nil: a unit's bytes
// were served from its head before its checks ran, and a whole decode then
// found it corrupt. Every read of a damaged image fails with that error.
func (im *image) Damaged() error {
	if p := im.damaged.Load(); p != nil {
		return *p
	}
	return nil
}

// prefixMaxNum/prefixMaxDen bound the reads served by a prefix decode to those that
// end in the first 3/4 of their unit: past that a prefix decode costs
// about a whole one (see BenchmarkPrefix in vdisk/codec).
const prefixMaxNum, prefixMaxDen = 3, 4

// readPrefix serves ur, a read of part of a compressed unit, by decoding
// only the unit's head up to the end of the bytes the read wants, when
// that is safe (the decoder says so: blockmap.PrefixDecoder) and cheap
// (the read ends early in the unit, which is neither cached nor being
// decoded). The unit is then finished in the background once reads pause
// (see Cache.finish), or, when the queue of such units is full, only when
// a read of its tail decodes it whole. It reports
// whether it served the read, or failed it (ur.err); false means
// "acquire the unit whole".
func (im *image) readPrefix(ctx context.Context, ur *unitRead, p []byte, off int64) bool {
	// Cheapest first: a read of a warm unit (cached) must pay no more
	// than the cache lookup before acquire finds it, and CanPrefix may
	// ask the source (a verified member's state, under its lock).
	pd, ok := ur.u.Dec.(blockmap.PrefixDecoder)
	end := ur.first + ur.covered - ur.u.Off
	c := im.cache
	if !ok || end*prefixMaxDen > int64(ur.u.Size)*prefixMaxNum || c.loading(ur.u) || !pd.CanPrefix() {
		return false
	}
	c.busy()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		ur.err = ctx.Err()
		return true
	}
	buf := getBuf(int(end))
	defer putBuf(buf)
	ok, err := safePrefix(ctx, pd, buf, ur.u)
	<-c.sem
	if err != nil {
		ur.err = err
		return true
	}
	if !ok {
		return false
	}
	c.misses.Add(1)
	c.prefixes.Add(1)
	copy(p[ur.first-off:][:ur.covered], buf[ur.first-ur.u.Off:])
	ur.prefixed = true
	key := unitKey{ur.u.Dec, ur.u.ID}
	im.servedMu.Lock()
	if im.served == nil {
		im.served = map[unitKey]struct{}{}
	}
	if len(im.served) >= maxServed {
		for k := range im.served { // forget one, any one
			delete(im.served, k)
			break
		}
	}
	im.served[key] = struct{}{}
	im.servedMu.Unlock()
	u := ur.u
	c.finish(u, func(err error) {
		if err == nil {
			im.servedMu.Lock()
			delete(im.served, key)
			im.servedMu.Unlock()
			return
		}
		im.checkDamage(u, err)
	})
	return true
}

// maxServed bounds the units an image remembers serving the head of
// without their whole decode having run (under load the background
// finish is skipped, see Cache.finish): 64 Ki units, a few MiB. A unit
// forgotten, when later found corrupt, fails only its own reads, as an
// unchecked unit does, instead of damaging the image.
const maxServed = 1 << 16

// safePrefix is safeDecode for a prefix decode.
func safePrefix(ctx context.Context, pd blockmap.PrefixDecoder, dst []byte, u blockmap.Unit) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{r}
		}
	}()
	return pd.DecodePrefix(ctx, dst, u)
}

// checkDamage is called with the error of a decode of u. When u's head was
// served before its checks ran and err says the unit is corrupt, the
// bytes already served may be wrong: the image becomes damaged, and the
// error that says so is returned (Options.OnDamage gets it, once).
// Otherwise err is returned as it is: a corrupt unit nobody was served
// from fails only its own reads, and a transient error (I/O, a context
// that ended) says nothing about the unit.
func (im *image) checkDamage(u blockmap.Unit, err error) error {
	if !errors.Is(err, blockmap.ErrCorrupt) {
		return err
	}
	key := unitKey{u.Dec, u.ID}
	im.servedMu.Lock()
	_, served := im.served[key]
	im.servedMu.Unlock()
	if !served {
		return err
	}
	d := fmt.Errorf("vdisk: %s: image damaged: the compressed unit at virtual offset %d (%d bytes) was partly served before its whole decode failed: %w",
		im.name, u.Off, u.Size, err)
	if im.damaged.CompareAndSwap(nil, &d) && im.onDamage != nil {
		im.onDamage(d)
	}
	return im.Damaged()
}

func (im *image) Size() int64        { return im.size }
func (im *image) Format() string     { return im.m.Format() }
func (im *image) Warnings() []string { return im.m.Warnings() }

type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("vdisk: decoder panicked: %v", e.v) }

// mapRun maps off and checks the answer, so that a confused format fails
// the read instead of looping or copying out of range.
func (im *image) mapRun(off int64) (r blockmap.Run, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{v}
		}
	}()
	r, err = im.m.Map(off)
	if err != nil {
		return r, err
	}
	return r, r.Check(off, im.size)
}

// ReadAt reads virtual bytes; it is ReadAtContext with a context that
// never ends.
func (im *image) ReadAt(p []byte, off int64) (int, error) {
	return im.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext reads virtual bytes. The runs the request covers are
// mapped first; then every compressed unit not yet cached is decoded in
// parallel while stored runs are read (contiguous ones with a single
// ReadAt) and holes cleared; then the units are copied out. When ctx ends
// while the read waits (for a worker, for a unit another reader decodes,
// for a source that is a ContextReaderAt), it returns ctx.Err() and
// leaves p undefined.
func (im *image) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("vdisk: negative offset")
	}
	if off >= im.size {
		return 0, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := im.Damaged(); err != nil {
		return 0, err
	}
	n := int(min(int64(len(p)), im.size-off))
	if err := im.read(ctx, p[:n], off); err != nil {
		// A source or decoder may wrap the context's error, or fail
		// otherwise once interrupted; the caller wants to know it was
		// interrupted.
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, ctxErr
		}
		return 0, err
	}
	im.ra.observe(im, off, int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Segment is a part of a read that needs no decoding: zeros, or bytes
// stored verbatim at Phys in Src.
type Segment struct {
	Len  int
	Zero bool
	Src  io.ReaderAt
	Phys int64
}

// maxSegments bounds how finely a read may be split before copying it is
// the cheaper way to serve it.
const maxSegments = 64

// Segments describes [off, off+n) as zero and stored pieces, merging
// neighbours, so that a caller can move the bytes without copying them
// (the FUSE layer splices them). ok is false when any part is compressed,
// or the read would need more than a few dozen pieces.
func (im *image) Segments(off int64, n int) ([]Segment, bool) {
	if off < 0 || n <= 0 || off+int64(n) > im.size || im.Damaged() != nil {
		return nil, false
	}
	var segs []Segment
	end := off + int64(n)
	for pos := off; pos < end; {
		r, err := im.mapRun(pos)
		if err != nil || r.Kind == blockmap.Compressed {
			return nil, false
		}
		length := min(r.End(), end) - pos
		seg := Segment{Len: int(length), Zero: r.Kind != blockmap.Stored}
		if !seg.Zero {
			seg.Src, seg.Phys = r.Src, r.Phys+(pos-r.Off)
		}
		if k := len(segs) - 1; k >= 0 && segs[k].Zero == seg.Zero &&
			(seg.Zero || (segs[k].Src == seg.Src && segs[k].Phys+int64(segs[k].Len) == seg.Phys)) {
			segs[k].Len += seg.Len
		} else if len(segs) == maxSegments {
			return nil, false
		} else {
			segs = append(segs, seg)
		}
		pos += length
	}
	return segs, true
}

// piece is the part of a read served by one run: dst is p[pos-off:...].
type piece struct {
	pos int64 // virtual offset of the piece's first byte
	len int
	run blockmap.Run
}

func (im *image) read(ctx context.Context, p []byte, off int64) error {
	var pieces []piece
	var units []unitRead
	end := off + int64(len(p))
	for pos := off; pos < end; {
		r, err := im.mapRun(pos)
		if err != nil {
			return err
		}
		stop := min(r.End(), end)
		pieces = append(pieces, piece{pos: pos, len: int(stop - pos), run: r})
		if r.Kind == blockmap.Compressed {
			if n := len(units); n > 0 && units[n-1].u == r.Unit {
				units[n-1].covered += stop - pos
			} else {
				units = append(units, unitRead{u: r.Unit, first: pos, covered: stop - pos})
			}
		}
		pos = stop
	}
	// Units the read covers whole are decoded straight into p; the others
	// go through the cache, since a later read will want the rest of them.
	for i := range units {
		u := &units[i]
		u.direct = u.first == u.u.Off && u.covered == int64(u.u.Size)
	}

	// Units already cached are taken here. Decodes are the slow part: all
	// but the last of the others start on goroutines (the cache bounds how
	// many run at once), the stored I/O runs meanwhile, and the last is
	// decoded on this goroutine. A goroutine for a cached unit would only
	// add a wait to be scheduled, which is long while decodes in C hold
	// every P: reading 50,000 guest files, reads spent 1.6 s in all
	// waiting for such goroutines.
	var wg sync.WaitGroup
	var todo []*unitRead
	for i := range units {
		u := &units[i]
		if u.e = im.cache.cached(u.u); u.e != nil {
			u.direct = false // copied out of the entry below
		} else {
			todo = append(todo, u)
		}
	}
	for i := 0; i < len(todo)-1; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			todo[i].load(ctx, im, p, off)
		}()
	}
	storedErr := im.readStored(ctx, p, off, pieces)
	if last := len(todo) - 1; last >= 0 {
		todo[last].load(ctx, im, p, off)
	}
	wg.Wait()
	defer func() {
		for _, u := range units {
			if u.e != nil {
				im.cache.release(u.e)
			}
		}
	}()
	if storedErr != nil {
		return storedErr
	}
	for _, u := range units {
		if u.err != nil {
			return im.checkDamage(u.u, u.err)
		}
	}
	i := 0
	for _, pc := range pieces {
		if pc.run.Kind != blockmap.Compressed {
			continue
		}
		for units[i].u != pc.run.Unit {
			i++
		}
		if !units[i].direct && !units[i].prefixed {
			copy(p[pc.pos-off:][:pc.len], units[i].e.data[pc.pos-pc.run.Unit.Off:])
		}
	}
	return nil
}

// unitRead is one compressed unit a read needs.
type unitRead struct {
	u        blockmap.Unit
	first    int64 // virtual offset of the first byte the read wants
	covered  int64 // how many of its bytes the read wants
	direct   bool  // decoded straight into the read's buffer
	prefixed bool  // served from a decode of the unit's head (readPrefix)
	e        *unitEntry
	err      error
}

func (ur *unitRead) load(ctx context.Context, im *image, p []byte, off int64) {
	c := im.cache
	if ur.direct {
		ur.err = c.decodeInto(ctx, ur.u, p[ur.u.Off-off:][:ur.u.Size])
		return
	}
	if im.readPrefix(ctx, ur, p, off) {
		return
	}
	ur.e, ur.err = c.acquire(ctx, ur.u)
}

// readStored clears the holes and reads the stored pieces of p, joining
// pieces that are contiguous in one source into a single ReadAt.
func (im *image) readStored(ctx context.Context, p []byte, off int64, pieces []piece) error {
	for i := 0; i < len(pieces); {
		pc := pieces[i]
		dst := p[pc.pos-off:][:pc.len]
		switch pc.run.Kind {
		case blockmap.Hole, blockmap.Zero:
			clear(dst)
			i++
			continue
		case blockmap.Compressed:
			i++
			continue
		}
		phys := pc.run.Phys + (pc.pos - pc.run.Off)
		j, length := i+1, pc.len
		for ; j < len(pieces); j++ {
			q := pieces[j]
			if q.run.Kind != blockmap.Stored || q.run.Src != pc.run.Src || q.run.Phys+(q.pos-q.run.Off) != phys+int64(length) {
				break
			}
			length += q.len
		}
		if err := blockmap.ReadStored(ctx, pc.run.Src, p[pc.pos-off:][:length], phys); err != nil {
			return fmt.Errorf("vdisk: reading %d bytes at image offset %d: %w", length, phys, err)
		}
		i = j
	}
	return nil
}
