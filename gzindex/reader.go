package gzindex

import (
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
)

const (
	// cursorOut is a cursor's output buffer: besides the 32 KiB window it
	// keeps the most recent output, so re-reads and small backward steps
	// (readahead arriving out of order) cost no decoding.
	cursorOut = 512<<10 + outSlack
	cursorIn  = 64 << 10
	// maxCursors is how many decoders a Reader keeps positioned between
	// reads: enough for a few interleaved sequential readers.
	maxCursors = 8
	// minRoom is the free output space below which a decoder slides its
	// buffer before decoding more.
	minRoom = 64 << 10
)

// inflaters recycles decoders, whose buffers are half a MiB, across reads
// that need more decoders than a Reader keeps and across Readers.
var inflaters = sync.Pool{New: func() any { return newInflater(cursorOut, cursorIn) }}

// Reader serves random access to the decompressed stream. It keeps a few
// decoders (cursors) where earlier reads left them: a read continues the
// cursor that is closest before its offset, or waits for a busy one that is
// about to get there, and restarts a decoder from the nearest checkpoint
// only when that is cheaper. A sequential reader thus costs one decoding
// pass, and any read decodes at most the index's span before its data.
//
// Reader does not verify CRC-32s: Build did. A stream changed since it was
// indexed gives errors where its deflate data no longer decodes, and wrong
// bytes elsewhere, so check Index.Matches before using a persisted index.
type Reader struct {
	r     io.ReaderAt
	size  int64
	ix    *Index
	mu    sync.Mutex
	cond  sync.Cond
	curs  []*cursor
	clock uint64
}

type cursor struct {
	f     *inflater
	pos   int64 // decompressed offset of f.out[f.op]
	ok    bool  // pos and the decoder state are valid
	busy  bool
	until int64 // while busy: where the current read leaves pos
	used  uint64
	kept  bool   // part of Reader.curs, rather than borrowed for one read
	wbuf  []byte // a split index's window, read to restart from it
}

// NewReader returns a Reader of the stream of size bytes in r, which ix
// indexes. It is safe for concurrent use.
func NewReader(r io.ReaderAt, size int64, ix *Index) *Reader {
	rd := &Reader{r: r, size: size, ix: ix}
	rd.cond.L = &rd.mu
	return rd
}

// Size returns the decompressed size.
func (rd *Reader) Size() int64 { return rd.ix.size }

// ReadAt implements io.ReaderAt over the decompressed bytes.
func (rd *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("gzindex: negative offset %d", off)
	}
	if off >= rd.ix.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), rd.ix.size-off)]
	if len(want) == 0 {
		return 0, nil
	}
	c, from := rd.acquire(off, off+int64(len(want)))
	n, err := c.read(rd, want, off, from)
	rd.release(c, err == nil)
	if err != nil {
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// cost is how many bytes c must decode before it reaches off, and whether
// it can at all. A busy cursor is judged by where its read will leave it.
func (c *cursor) cost(off int64) (int64, bool) {
	if !c.ok {
		return 0, false
	}
	if c.busy {
		switch {
		case off >= c.until:
			return off - c.until, true
		case off >= c.until-(cursorOut-windowSize)/2:
			return 0, true
		}
		return 0, false
	}
	if off < c.pos-int64(c.f.op) {
		return 0, false
	}
	return max(0, off-c.pos), true
}

// acquire picks the cursor for a read of [off, end) and marks it busy. It
// returns the checkpoint to restart the cursor from, or nil to continue it.
func (rd *Reader) acquire(off, end int64) (*cursor, *checkpoint) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	cp := rd.ix.find(off)
	restart := off - cp.out
	for {
		var idle, busy *cursor
		idleCost, busyCost := int64(math.MaxInt64), int64(math.MaxInt64)
		for _, c := range rd.curs {
			cost, ok := c.cost(off)
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
			return idle, nil
		case busy != nil && busyCost < restart && busyCost < idleCost:
			rd.cond.Wait()
			continue
		}
		c := rd.spare()
		c.busy, c.until = true, end
		return c, cp
	}
}

// spare returns an idle cursor to restart: a new one while the Reader
// keeps fewer than maxCursors, else the least recently used idle one, else
// (all busy) one borrowed for this read only.
func (rd *Reader) spare() *cursor {
	if len(rd.curs) < maxCursors {
		c := &cursor{f: inflaters.Get().(*inflater), kept: true}
		rd.curs = append(rd.curs, c)
		return c
	}
	var lru *cursor
	for _, c := range rd.curs {
		if !c.busy && (lru == nil || c.used < lru.used) {
			lru = c
		}
	}
	if lru != nil {
		return lru
	}
	return &cursor{f: inflaters.Get().(*inflater)}
}

func (rd *Reader) release(c *cursor, ok bool) {
	rd.mu.Lock()
	c.busy = false
	c.ok = ok
	rd.clock++
	c.used = rd.clock
	if !ok {
		c.used = 0 // a failed cursor is the first to reuse
	}
	if !c.kept {
		inflaters.Put(c.f)
		c.f = nil
	}
	rd.cond.Broadcast()
	rd.mu.Unlock()
}

// read fills p with the bytes at off, first restarting from cp if not nil.
// The caller chose c so that off is not before its buffered output.
func (c *cursor) read(rd *Reader, p []byte, off int64, cp *checkpoint) (int, error) {
	if cp != nil {
		if err := c.restart(rd, cp); err != nil {
			return 0, err
		}
	}
	f := c.f
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at < c.pos {
			i := f.op - int(c.pos-at)
			n += copy(p[n:], f.out[i:f.op])
			continue
		}
		if f.state == stDone {
			if err := c.nextMember(rd); err != nil {
				return n, err
			}
		}
		if len(f.out)-outSlack-f.op < minRoom {
			f.slide()
		}
		before := f.op
		err := f.fill(len(f.out)-outSlack, math.MaxInt64)
		c.pos += int64(f.op - before)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// restart positions the cursor's decoder at checkpoint cp.
func (c *cursor) restart(rd *Reader, cp *checkpoint) error {
	f := c.f
	if c.wbuf == nil && cp.inSource() {
		c.wbuf = make([]byte, windowSize)
	}
	w, err := rd.ix.window(cp, c.wbuf)
	// A split index's window that cannot be read, or fails its check,
	// is passed over for the checkpoint before it: decoding from there
	// yields the same bytes, a span later. The first has no window.
	for err != nil {
		i := sort.Search(len(rd.ix.cps), func(i int) bool { return rd.ix.cps[i].in >= cp.in })
		if i == 0 || i >= len(rd.ix.cps) {
			return err
		}
		cp = &rd.ix.cps[i-1]
		w, err = rd.ix.window(cp, c.wbuf)
	}
	if err := unpackWindow(f, cp, w); err != nil {
		return err
	}
	f.src.reset(rd.r, rd.size)
	f.histLo = 0
	if err := f.resume(cp.in, cp.hdr); err != nil {
		return err
	}
	c.pos = cp.out
	return nil
}

// nextMember moves from the end of a member's deflate data, over its
// trailer, to the next member's deflate data.
func (c *cursor) nextMember(rd *Reader) error {
	f := c.f
	if rd.ix.raw {
		return fmt.Errorf("%w: the raw deflate stream ends at compressed byte %d, before the %d bytes its index expects (was the stream changed?)",
			ErrCorrupt, (f.bitPos()+7)/8, rd.ix.size)
	}
	f.src.seek((f.bitPos()+7)/8 + gzTrailer)
	if err := readMemberHeader(&f.src); err != nil {
		return fmt.Errorf("%w (the index expects more data: was the stream changed?)", err)
	}
	f.startStream()
	return nil
}

// unpackWindow puts cp's window, stored as w, at the start of f's output.
func unpackWindow(f *inflater, cp *checkpoint, w []byte) error {
	f.op = 0
	if !cp.packed {
		f.op = copy(f.out, w)
		return nil
	}
	f.src.reset(bytesAt(w), int64(len(w)))
	f.startStream()
	for f.state != stDone {
		if err := f.fill(cp.wlen+1, math.MaxInt64); err != nil {
			return fmt.Errorf("%w: a checkpoint window does not decompress: %v", ErrIndex, err)
		}
		if f.op > cp.wlen {
			break
		}
	}
	if f.op != cp.wlen {
		return fmt.Errorf("%w: a checkpoint window decompresses to more or less than its %d bytes", ErrIndex, cp.wlen)
	}
	return nil
}

// resume positions the decoder at bit offset in. hdr is the bit offset of
// the enclosing block's header, read again to rebuild the block's state,
// or -1 when in is a block boundary.
func (f *inflater) resume(in, hdr int64) error {
	f.bits, f.nb = 0, 0
	f.final = false
	f.state = stHeader
	if hdr < 0 {
		return f.seekBit(in)
	}
	if hdr >= in {
		return fmt.Errorf("%w: a checkpoint's block header (bit %d) is not before it (bit %d)", ErrIndex, hdr, in)
	}
	if err := f.seekBit(hdr); err != nil {
		return err
	}
	if err := f.blockHeader(); err != nil {
		return err
	}
	switch f.state {
	case stHuffman:
	case stStored:
		skip := in/8 - f.bitPos()/8
		if in%8 != 0 || skip < 0 || skip >= int64(f.stored) {
			return fmt.Errorf("%w: a checkpoint at bit %d is not inside the stored block at bit %d", ErrIndex, in, hdr)
		}
		f.stored -= int(skip)
	default:
		return fmt.Errorf("%w: a checkpoint at bit %d is inside an empty block", ErrIndex, in)
	}
	if in < f.bitPos() {
		return fmt.Errorf("%w: a checkpoint at bit %d is inside the header of the block at bit %d", ErrIndex, in, hdr)
	}
	return f.seekBit(in)
}
