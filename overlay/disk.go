package overlay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Base is the read-only view under a disk's overlay. ReadAt fills all of
// p or fails; it is called concurrently.
type Base interface {
	ReadAt(ctx context.Context, p []byte, off int64) error
}

// BaseFunc adapts a function to Base; for a vdisk.Image img:
//
//	overlay.BaseFunc(func(ctx context.Context, p []byte, off int64) error {
//		_, err := img.ReadAtContext(ctx, p, off)
//		return err
//	})
type BaseFunc func(ctx context.Context, p []byte, off int64) error

func (f BaseFunc) ReadAt(ctx context.Context, p []byte, off int64) error { return f(ctx, p, off) }

// nStripes is how many block locks writes take (block % nStripes), so that
// writes to one block are serialised (a partial-block write reads, merges
// and writes the block whole) while writes elsewhere run in parallel.
const nStripes = 1024

// autoCommit is how many uncommitted map updates make a write commit them
// itself: memory and the space of overwritten blocks are then bounded even
// for a guest that never syncs.
const autoCommit = 1 << 16

// Disk is the writable view of one disk: the base with the overlay on top.
// All methods are safe for concurrent use.
type Disk struct {
	name, dir string
	size      int64
	blocks    uint64
	base      Base
	data, jnl *os.File

	stripes [nStripes]sync.Mutex
	// reuse is held shared by readers from the lookup of a slot until its
	// bytes are read; a sync takes it exclusively once before it frees the
	// slots that commit released, so no reader ever sees a reused slot.
	reuse sync.RWMutex

	mu          sync.RWMutex // guards the fields below
	tab         *table
	alloc       allocator
	pending     []entry  // map updates since the last commit, in order
	pendingFree []uint64 // slots released since the last commit
	lastSync    time.Time

	syncMu   sync.Mutex // serialises commits; guards the fields below
	jnlEnd   int64
	seq      uint64
	created  time.Time
	warnings []string

	failed atomic.Pointer[error]
	closed atomic.Bool
}

func openDisk(dir, name string, size int64, base Base) (*Disk, error) {
	d := &Disk{name: name, dir: dir, size: size, blocks: uint64((size + BlockSize - 1) / BlockSize), base: base}
	jp, dp := filepath.Join(dir, name+journalExt), filepath.Join(dir, name+dataExt)
	if _, err := os.Stat(jp); errors.Is(err, os.ErrNotExist) {
		// A new disk: an empty data file, then the journal, whose
		// appearance is what makes the disk exist.
		if err := os.WriteFile(dp, nil, 0o600); err != nil {
			return nil, fmt.Errorf("overlay: %s: %w", name, err)
		}
		h := header{blockSize: BlockSize, diskSize: size, created: time.Now()}
		if err := writeAtomic(dir, name+journalExt, h.encode()); err != nil {
			return nil, err
		}
	}
	var err error
	if d.data, err = os.OpenFile(dp, os.O_RDWR|os.O_CREATE|unix.O_NONBLOCK, 0o600); err != nil {
		return nil, fmt.Errorf("overlay: %s: %w", name, err)
	}
	if d.jnl, err = os.OpenFile(jp, os.O_RDWR|unix.O_NONBLOCK, 0o600); err != nil {
		d.data.Close()
		return nil, fmt.Errorf("overlay: %s: %w", name, err)
	}
	err = regular(d.data)
	if err == nil {
		err = regular(d.jnl)
	}
	if err == nil {
		err = d.recover()
	}
	if err != nil {
		d.data.Close()
		d.jnl.Close()
		return nil, err
	}
	return d, nil
}

// regular refuses anything but a regular file (a FIFO put in the folder
// would block reads for ever).
func regular(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, f.Name())
	}
	return nil
}

// recover replays the journal into the table, cuts a torn tail, and frees
// every slot the committed map does not name (it may hold writes that were
// never committed).
func (d *Disk) recover() error {
	dst, err := d.data.Stat()
	if err != nil {
		return fmt.Errorf("overlay: %s: %w", d.name, err)
	}
	jst, err := d.jnl.Stat()
	if err != nil {
		return fmt.Errorf("overlay: %s: %w", d.name, err)
	}
	slots := uint64(dst.Size() / BlockSize)
	if dst.Size()%BlockSize != 0 {
		// The last block of a disk whose size is not a multiple of the
		// block size may be written short.
		slots++
	}
	tab := newTable(d.blocks)
	rp, err := replay(d.jnl, jst.Size(), limits{blocks: d.blocks, slots: slots}, func(e entry) { tab.apply(e, func(uint64) {}) })
	if err != nil {
		return fmt.Errorf("overlay: %s: %w", d.name, err)
	}
	if rp.diskSize != d.size {
		return fmt.Errorf("%w: %s: the overlay is for a disk of %d bytes, not %d", ErrCorrupt, d.name, rp.diskSize, d.size)
	}
	end, fr, err := loadMap(tab)
	if err != nil {
		return fmt.Errorf("overlay: %s: %w", d.name, err)
	}
	d.tab, d.alloc = tab, allocator{end: end}
	if err := d.data.Truncate(int64(end) * BlockSize); err != nil {
		return fmt.Errorf("overlay: %s: %w", d.name, err)
	}
	if err := d.punch(fr); err != nil {
		return err
	}
	d.alloc.give(fr)
	if rp.end < jst.Size() {
		if err := d.jnl.Truncate(rp.end); err != nil {
			return fmt.Errorf("overlay: %s: %w", d.name, err)
		}
		if err := unix.Fdatasync(int(d.jnl.Fd())); err != nil {
			return fmt.Errorf("overlay: %s: %w", d.name, err)
		}
		d.warnings = append(d.warnings, fmt.Sprintf("%s: recovered to the last commit, dropping %d journal bytes (%s)", d.name, jst.Size()-rp.end, rp.tail))
	}
	d.jnlEnd, d.seq, d.lastSync, d.created = rp.end, rp.seq, rp.lastSync, rp.created
	return nil
}

// loadMap finds, in a table replayed from a journal, the data file's free
// slots below end, the slot past the last one used. It refuses two blocks
// that share a slot: freeing one would corrupt the other.
func loadMap(tab *table) (end uint64, free []run, err error) {
	// The used slots, sorted: duplicates are neighbours, and the gaps
	// between them are the free runs. This costs memory in proportion
	// to the map, whatever slot numbers a crafted journal names.
	used := tab.dataSlots()
	slices.Sort(used)
	next := uint64(0)
	for i, s := range used {
		if i > 0 && used[i-1] == s {
			return 0, nil, fmt.Errorf("%w: blocks share data block %d", ErrCorrupt, s)
		}
		if s > next {
			free = append(free, run{next, s - next})
		}
		next = s + 1
	}
	return next, free, nil
}

// punch gives freed slots' space back to the host filesystem. Where the
// filesystem cannot punch holes the space stays allocated (the slots are
// reused all the same).
func (d *Disk) punch(rs []run) error {
	for _, r := range rs {
		err := unix.Fallocate(int(d.data.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(r.start)*BlockSize, int64(r.n)*BlockSize)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("overlay: %s: punch data blocks %d-%d: %w", d.name, r.start, r.start+r.n-1, err)
		}
	}
	return nil
}

// Name is the disk's name in the folder; Size its size, fixed for good.
func (d *Disk) Name() string { return d.name }
func (d *Disk) Size() int64  { return d.size }

// Warnings says what opening the disk repaired (a journal tail cut at the
// last commit after a crash, with its reason) and the last few failures
// to punch freed space.
func (d *Disk) Warnings() []string {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	return append([]string(nil), d.warnings...)
}

// Modified reports whether the overlay holds anything for the disk: its
// bytes are then not all the archive's.
func (d *Disk) Modified() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.tab.data+d.tab.zero > 0
}

// Written is the bytes of data the overlay holds (blocks read as zeros
// take none).
func (d *Disk) Written() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.tab.data * BlockSize
}

// LastSync is when the last commit was made (zero if never).
func (d *Disk) LastSync() time.Time {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.lastSync
}

func (d *Disk) usable() error {
	if d.closed.Load() {
		return ErrClosed
	}
	if p := d.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (d *Disk) check(off, n int64) error {
	if err := d.usable(); err != nil {
		return err
	}
	if off < 0 || n < 0 || off > d.size || n > d.size-off {
		return fmt.Errorf("%w: %s: %d bytes at %d, size %d", ErrPastEnd, d.name, n, off, d.size)
	}
	return nil
}

// blockEnd is the end of block b: the next block's start, or the disk's end.
func (d *Disk) blockEnd(b uint64) int64 {
	return min(int64(b+1)*BlockSize, d.size)
}

// segment is a run of the view that reads one way: from the base, as
// zeros, or from consecutive slots of the data file.
type segment struct {
	lo, hi int64  // disk offsets
	val    uint64 // the table value of lo's block
}

// ReadAt fills p with the view's bytes at off. Within one block the bytes
// come from one version of it: the one before or after a concurrent write.
// A read past the end fails with ErrPastEnd: the caller clamps reads at
// Size, as it does for the read-only view.
func (d *Disk) ReadAt(ctx context.Context, p []byte, off int64) error {
	n := int64(len(p))
	if err := d.check(off, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	var segs []segment
	d.reuse.RLock()
	d.mu.RLock()
	for b := uint64(off / BlockSize); int64(b)*BlockSize < off+n; b++ {
		lo, hi := max(off, int64(b)*BlockSize), min(off+n, d.blockEnd(b))
		v := d.tab.get(b)
		if k := len(segs); k > 0 {
			s := &segs[k-1]
			sameKind := v < valSlot0 && s.val == v
			nextSlot := v >= valSlot0 && s.val >= valSlot0 && v-s.val == b-uint64(s.lo/BlockSize)
			if sameKind || nextSlot {
				s.hi = hi
				continue
			}
		}
		segs = append(segs, segment{lo, hi, v})
	}
	d.mu.RUnlock()
	var err error
	for _, s := range segs {
		if s.val >= valSlot0 && err == nil {
			at := int64(s.val-valSlot0)*BlockSize + s.lo%BlockSize
			if _, e := d.data.ReadAt(p[s.lo-off:s.hi-off], at); e != nil {
				err = fmt.Errorf("overlay: %s: read data at %d: %w", d.name, at, e)
			}
		}
	}
	d.reuse.RUnlock()
	if err != nil {
		return err
	}
	for _, s := range segs {
		switch {
		case s.val == valZero:
			clear(p[s.lo-off : s.hi-off])
		case s.val == valUnmapped:
			if err := d.readBase(ctx, p[s.lo-off:s.hi-off], s.lo); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Disk) readBase(ctx context.Context, p []byte, off int64) error {
	if d.base == nil {
		clear(p)
		return nil
	}
	if err := d.base.ReadAt(ctx, p, off); err != nil {
		return fmt.Errorf("overlay: %s: base at %d: %w", d.name, off, err)
	}
	return nil
}

// WriteAt writes p at off. It fails with ErrPastEnd rather than grow the
// disk. The bytes are durable once Sync returns.
func (d *Disk) WriteAt(ctx context.Context, p []byte, off int64) error {
	return d.write(ctx, p, off, int64(len(p)))
}

// WriteZeroes makes [off, off+length) read as zeros. Whole blocks take
// no data space (and release what they held); the parts of blocks at the
// ends are written.
func (d *Disk) WriteZeroes(ctx context.Context, off, length int64) error {
	return d.write(ctx, nil, off, length)
}

// Discard is WriteZeroes: a discarded range reads as zeros, and the space
// its whole blocks held is freed (punched from the data file) at the next
// commit. It serves FALLOC_FL_PUNCH_HOLE and the loop driver's discards.
func (d *Disk) Discard(ctx context.Context, off, length int64) error {
	return d.write(ctx, nil, off, length)
}

// blockWrite is one block's part of a write.
type blockWrite struct {
	b   uint64
	src []byte // the block's new bytes (nil: zeros)
	pOf int64  // where src starts in the caller's buffer, or -1
}

// write writes p (nil: zeros) to [off, off+n).
func (d *Disk) write(ctx context.Context, p []byte, off, n int64) error {
	if err := d.check(off, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	full, err := d.writeLocked(ctx, p, off, n)
	if err != nil {
		return err
	}
	if full {
		return d.Sync()
	}
	return nil
}

// writeLocked is write under the blocks' stripes. Its map updates are
// made at once, so a commit has all of a write or none of it. full says
// that enough map updates wait for a commit that the writer should make
// one.
func (d *Disk) writeLocked(ctx context.Context, p []byte, off, n int64) (full bool, err error) {
	b0, b1 := uint64(off/BlockSize), uint64((off+n-1)/BlockSize+1)
	unlock := d.lockBlocks(b0, b1)
	defer unlock()

	// Zeroing, the whole blocks are one range entry, which costs the
	// map and the journal the same whatever its length.
	var zr entry
	if p == nil {
		bA, bB := uint64((off+BlockSize-1)/BlockSize), uint64((off+n)/BlockSize)
		if off+n == d.size {
			bB = d.blocks
		}
		if bA < bB {
			zr = entry{block: bA, slot: zeroSlot, n: bB - bA}
		}
	}
	ws := make([]blockWrite, 0, min(b1-b0, 2+uint64(len(p))/BlockSize))
	for b := b0; b < b1; b++ {
		if zr.n > 0 && b == zr.block {
			b += zr.n - 1
			continue
		}
		bs, be := int64(b)*BlockSize, d.blockEnd(b)
		if off <= bs && off+n >= be {
			w := blockWrite{b: b, pOf: -1}
			// A block written with zeros is held as zeros: no space,
			// and export and SEEK_HOLE see a hole.
			if p != nil && !isZero(p[bs-off:be-off]) {
				w.src, w.pOf = p[bs-off:be-off], bs-off
			}
			ws = append(ws, w)
			continue
		}
		// A part of the block: merge it into the block's current bytes.
		buf := make([]byte, be-bs)
		if err := d.readBlock(ctx, b, buf); err != nil {
			return false, err
		}
		lo, hi := max(off, bs), min(off+n, be)
		if p != nil {
			copy(buf[lo-bs:], p[lo-off:hi-off])
		} else {
			clear(buf[lo-bs : hi-bs])
		}
		w := blockWrite{b: b, src: buf, pOf: -1}
		if isZero(buf) {
			w.src = nil
		}
		ws = append(ws, w)
	}

	need := uint64(0)
	for _, w := range ws {
		if w.src != nil {
			need++
		}
	}
	var runs []run
	if need > 0 {
		d.mu.Lock()
		runs = d.alloc.take(need, nil)
		d.mu.Unlock()
	}
	vals := make([]uint64, len(ws))
	ri, next := 0, uint64(0)
	for i, w := range ws {
		if w.src == nil {
			vals[i] = valZero
			continue
		}
		for next == runs[ri].n {
			ri, next = ri+1, 0
		}
		vals[i] = runs[ri].start + next + valSlot0
		next++
	}
	if err := d.writeSlots(p, ws, vals); err != nil {
		d.mu.Lock()
		for _, r := range runs {
			for s := r.start; s < r.start+r.n; s++ {
				d.pendingFree = append(d.pendingFree, s)
			}
		}
		d.mu.Unlock()
		return false, err
	}
	d.mu.Lock()
	if zr.n > 0 {
		d.tab.apply(zr, func(s uint64) { d.pendingFree = append(d.pendingFree, s) })
		d.pending = append(d.pending, zr)
	}
	for i, w := range ws {
		if old := d.tab.set(w.b, vals[i]); old >= valSlot0 {
			d.pendingFree = append(d.pendingFree, old-valSlot0)
		}
		d.pending = append(d.pending, entry{block: w.b, slot: toSlot(vals[i])})
	}
	full = len(d.pending) >= autoCommit
	d.mu.Unlock()
	return full, nil
}

// writeSlots writes each block's bytes to its slot, joining blocks that
// are consecutive both in the caller's buffer and in the data file into
// one write.
func (d *Disk) writeSlots(p []byte, ws []blockWrite, vals []uint64) error {
	for i := 0; i < len(ws); {
		if ws[i].src == nil {
			i++
			continue
		}
		j := i + 1
		if ws[i].pOf >= 0 {
			for j < len(ws) && ws[j].pOf >= 0 && ws[j].src != nil && vals[j] == vals[j-1]+1 {
				j++
			}
		}
		src := ws[i].src
		if j > i+1 {
			src = p[ws[i].pOf : ws[j-1].pOf+int64(len(ws[j-1].src))]
		}
		at := int64(vals[i]-valSlot0) * BlockSize
		if _, err := d.data.WriteAt(src, at); err != nil {
			return fmt.Errorf("overlay: %s: write data at %d: %w", d.name, at, err)
		}
		i = j
	}
	return nil
}

// readBlock reads block b's current bytes; the caller holds its stripe,
// so its slot cannot be released meanwhile.
func (d *Disk) readBlock(ctx context.Context, b uint64, buf []byte) error {
	d.mu.RLock()
	v := d.tab.get(b)
	d.mu.RUnlock()
	switch {
	case v == valZero:
		clear(buf)
	case v >= valSlot0:
		at := int64(v-valSlot0) * BlockSize
		if _, err := d.data.ReadAt(buf, at); err != nil {
			return fmt.Errorf("overlay: %s: read data at %d: %w", d.name, at, err)
		}
	default:
		return d.readBase(ctx, buf, int64(b)*BlockSize)
	}
	return nil
}

func isZero(b []byte) bool {
	var z [256]byte
	for len(b) > 0 {
		k := min(len(b), len(z))
		if !bytes.Equal(b[:k], z[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}

// lockBlocks locks the stripes of blocks [b0, b1) in ascending stripe
// order, so two writes never wait on each other in a cycle.
func (d *Disk) lockBlocks(b0, b1 uint64) func() {
	var lo1, hi1, lo2, hi2 uint64 // stripes [lo1,hi1) and [lo2,hi2)
	if b1-b0 >= nStripes {
		lo1, hi1 = 0, nStripes
	} else if s0, s1 := b0%nStripes, (b1-1)%nStripes; s0 <= s1 {
		lo1, hi1 = s0, s1+1
	} else {
		lo1, hi1, lo2, hi2 = 0, s1+1, s0, nStripes
	}
	for s := lo1; s < hi1; s++ {
		d.stripes[s].Lock()
	}
	for s := lo2; s < hi2; s++ {
		d.stripes[s].Lock()
	}
	return func() {
		for s := lo1; s < hi1; s++ {
			d.stripes[s].Unlock()
		}
		for s := lo2; s < hi2; s++ {
			d.stripes[s].Unlock()
		}
	}
}
