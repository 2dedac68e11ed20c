package gzindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/flate"
)

const (
	// DefaultSpan is the checkpoint spacing Build uses when given 0: a read
	// decodes at most this much before reaching its data.
	DefaultSpan = 4 << 20
	// MinSpan is the smallest spacing Build accepts; smaller values are
	// raised to it. Each checkpoint keeps up to 32 KiB of window, so finer
	// spacing costs more memory than it saves time.
	MinSpan = 16 << 10
	// DefaultMaxCheckpoints caps the checkpoints of one index when
	// Options.MaxCheckpoints is 0. Windows cost at most 32 KiB each (less
	// once compressed), so an index never holds more than 128 MiB of them,
	// whatever the stream's size.
	DefaultMaxCheckpoints = 4096
	// MaxMaxCheckpoints is the largest cap Options.MaxCheckpoints may set.
	MaxMaxCheckpoints = 1 << 16
	// minMaxCheckpoints keeps thinning meaningful.
	minMaxCheckpoints = 4

	buildOut      = 1<<20 + outSlack
	buildIn       = 256 << 10
	smallStream   = 256 << 10
	progressEvery = 1 << 20
)

// Options tunes BuildContext.
type Options struct {
	// Span is the target distance between checkpoints, in decompressed
	// bytes and in compressed bytes alike (whichever is reached first),
	// so that both the decoding and the input skipped by a read are
	// bounded. 0 means DefaultSpan.
	Span int64
	// MaxCheckpoints caps the number of checkpoints. When a stream would
	// need more, every other checkpoint is dropped and the span doubles,
	// so memory stays bounded and checkpoints stay evenly spaced. 0 means
	// DefaultMaxCheckpoints; other values are kept between 4 and
	// MaxMaxCheckpoints.
	MaxCheckpoints int
	// Progress, if not nil, is called with the number of compressed bytes
	// consumed so far, about every MiB and once at the end.
	Progress func(done int64)
	// Raw, if not nil, makes the stream one raw deflate stream (RFC 1951)
	// with no gzip framing, as a zip member stores it. The stream carries
	// no trailer of its own, so Build checks the decompressed data against
	// what the container recorded for it instead: its CRC-32 and size.
	Raw *RawCheck
}

// RawCheck is what a container (a zip's central directory) records about a
// raw deflate stream's decompressed data, which Build verifies as it verifies
// a gzip trailer.
type RawCheck struct {
	CRC32 uint32
	Size  int64
}

// Build reads the gzip stream of size bytes from r once and returns its
// index, with a checkpoint about every span bytes (0: DefaultSpan).
// progress, if not nil, is called with the compressed bytes consumed. It is
// BuildContext without cancellation.
func Build(r io.ReaderAt, size int64, span int64, progress func(done int64)) (*Index, error) {
	return BuildContext(context.Background(), r, size, Options{Span: span, Progress: progress})
}

// BuildContext reads the gzip stream of size bytes from r once, verifying
// every member's CRC-32 and ISIZE, and returns its index. It fails on a
// truncated stream, corrupt data, a trailer mismatch, or bytes after the
// last member other than zero padding (which is tolerated, with a warning,
// as gzip does). A decompression bomb is just a large stream: Build keeps
// reporting progress and stops with ctx's error when ctx is cancelled.
func BuildContext(ctx context.Context, r io.ReaderAt, size int64, opt Options) (*Index, error) {
	if r == nil {
		return nil, errors.New("gzindex: nil reader")
	}
	if size < 0 {
		return nil, fmt.Errorf("gzindex: negative stream size %d", size)
	}
	span := opt.Span
	if span <= 0 {
		span = DefaultSpan
	}
	span = max(span, MinSpan)
	maxCP := opt.MaxCheckpoints
	if maxCP <= 0 {
		maxCP = DefaultMaxCheckpoints
	}
	maxCP = min(max(maxCP, minMaxCheckpoints), MaxMaxCheckpoints)

	id, err := streamIdentity(r, size)
	if err != nil {
		return nil, err
	}
	zw, err := flate.NewWriter(nil, windowLevel)
	if err != nil {
		return nil, fmt.Errorf("gzindex: window compressor: %w", err)
	}
	b := &builder{
		ctx:      ctx,
		f:        newInflater(buildBuffers(size)),
		ix:       &Index{compressed: size, span: span, ident: id},
		maxCP:    maxCP,
		progress: opt.Progress,
		zw:       zw,
	}
	b.f.src.reset(r, size)
	run := b.run
	if opt.Raw != nil {
		b.ix.raw = true
		run = func() error { return b.runRaw(*opt.Raw) }
	}
	if err := run(); err != nil {
		return nil, err
	}
	b.ix.size = b.total
	if b.progress != nil {
		b.progress(size)
	}
	return b.ix, nil
}

// buildBuffers sizes Build's buffers: small streams, which are common
// (descriptors, small disks), get small ones.
func buildBuffers(size int64) (out, in int) {
	if size < smallStream {
		return smallStream + outSlack, int(max(size, 64))
	}
	return buildOut, buildIn
}

// windowLevel trades Build time for index size: windows are compressed
// once, while they are kept in memory, persisted and loaded many times.
const windowLevel = 4

type builder struct {
	ctx      context.Context
	f        *inflater
	ix       *Index
	maxCP    int
	lastIn   int64 // input position (source offset) of the last checkpoint
	lastOut  int64 // and its decompressed offset
	total    int64 // decompressed bytes so far
	progress func(done int64)
	reported int64
	zw       *flate.Writer
	zbuf     bytes.Buffer
}

func (b *builder) run() error {
	f := b.f
	for {
		if b.ix.members > 0 {
			if done, err := b.atEnd(); done || err != nil {
				return err
			}
		}
		if err := readMemberHeader(&f.src); err != nil {
			return err
		}
		f.startStream()
		if b.due() {
			b.checkpoint()
		}
		if err := b.member(); err != nil {
			return err
		}
		b.ix.members++
		b.ix.end = f.src.offset()
	}
}

// atEnd reports whether the last member has been read: the stream ends,
// or only zero bytes follow. Anything else must be another member.
func (b *builder) atEnd() (bool, error) {
	s := &b.f.src
	start := s.offset()
	if start == s.end {
		return true, nil
	}
	if err := s.avail(2); err != nil && !errors.Is(err, errEnd) {
		return false, fmt.Errorf("gzindex: reading compressed byte %d: %w", start, err)
	}
	if s.n-s.pos >= 2 && s.buf[s.pos] == gzID1 && s.buf[s.pos+1] == gzID2 ||
		s.n-s.pos == 1 && s.buf[s.pos] == gzID1 {
		return false, nil // another member, perhaps cut short
	}
	for s.offset() < s.end {
		if err := b.cancelled(); err != nil {
			return false, err
		}
		if err := s.avail(1); err != nil {
			return false, fmt.Errorf("gzindex: reading compressed byte %d: %w", s.offset(), err)
		}
		chunk := s.buf[s.pos:s.n]
		for i, c := range chunk {
			if c != 0 {
				return false, fmt.Errorf("%w: %d bytes at compressed byte %d are neither a gzip member nor zero padding (first non-zero byte at %d)",
					ErrTrailingData, s.end-start, start, s.offset()+int64(i))
			}
		}
		s.pos = s.n
		b.report()
	}
	b.ix.warnings = append(b.ix.warnings, fmt.Sprintf("%d bytes of zero padding after the last gzip member (compressed byte %d) ignored", s.end-start, start))
	return true, nil
}

// runRaw indexes a raw deflate stream, which must fill the stream exactly:
// a zip records the compressed size, so bytes left over mean the entry is
// not what its directory says.
func (b *builder) runRaw(want RawCheck) error {
	f := b.f
	f.startStream()
	b.checkpoint()
	crc, n, err := b.deflate()
	if err != nil {
		return err
	}
	end := (f.bitPos() + 7) / 8
	if end != f.src.end {
		return fmt.Errorf("%w: the deflate data ends at compressed byte %d, %d bytes before the end of the %d-byte stream",
			ErrTrailingData, end, f.src.end-end, f.src.end)
	}
	if crc != want.CRC32 {
		return fmt.Errorf("%w: the data's CRC-32 is %08x, the container records %08x", ErrChecksum, crc, want.CRC32)
	}
	if n != want.Size {
		return fmt.Errorf("%w: %d bytes decompressed, the container records %d", ErrChecksum, n, want.Size)
	}
	b.ix.members = 1
	b.ix.end = end
	return nil
}

// member decodes one member's deflate data, placing checkpoints, and
// checks its trailer.
func (b *builder) member() error {
	crc, n, err := b.deflate()
	if err != nil {
		return err
	}
	return b.trailer(crc, n)
}

// deflate decodes one deflate stream to its end, placing checkpoints, and
// returns the CRC-32 and length of its output.
func (b *builder) deflate() (crc uint32, n int64, err error) {
	f := b.f
	for f.state != stDone {
		if err := b.cancelled(); err != nil {
			return 0, 0, err
		}
		if len(f.out)-outSlack-f.op < 64<<10 {
			f.slide()
		}
		stop := len(f.out) - outSlack
		if rem := b.lastOut + b.ix.span - b.total; rem < int64(stop-f.op) {
			stop = f.op + int(max(rem, 1))
		}
		before := f.op
		err := f.fill(stop, b.lastIn+b.ix.span)
		crc = crc32.Update(crc, crc32.IEEETable, f.out[before:f.op])
		n += int64(f.op - before)
		b.total += int64(f.op - before)
		if err != nil {
			return 0, 0, err
		}
		b.report()
		if f.state != stDone && b.due() {
			b.checkpoint()
		}
	}
	return crc, n, nil
}

// trailer reads the gzip member trailer after the deflate data and checks
// it against the data's CRC-32 and length.
func (b *builder) trailer(crc uint32, n int64) error {
	f := b.f
	at := (f.bitPos() + 7) / 8
	t, err := readTrailer(&f.src, at)
	if err != nil {
		return err
	}
	if t.crc != crc {
		return fmt.Errorf("%w: member %d: the data's CRC-32 is %08x, its trailer at compressed byte %d says %08x",
			ErrChecksum, b.ix.members+1, crc, at, t.crc)
	}
	if t.size != uint32(n) {
		return fmt.Errorf("%w: member %d: %d bytes decompressed (%d modulo 2^32), its trailer at compressed byte %d says %d",
			ErrChecksum, b.ix.members+1, n, uint32(n), at, t.size)
	}
	return nil
}

func (b *builder) cancelled() error {
	if err := b.ctx.Err(); err != nil {
		return fmt.Errorf("gzindex: stopped at compressed byte %d: %w", b.f.src.offset(), err)
	}
	return nil
}

func (b *builder) due() bool {
	return len(b.ix.cps) == 0 || b.total-b.lastOut >= b.ix.span || b.f.src.offset()-b.lastIn >= b.ix.span
}

// checkpoint records the decoder's state. The caller stops decoding only
// between symbols, so the bit offset, the enclosing block's header and the
// window are all a later decoder needs.
func (b *builder) checkpoint() {
	f := b.f
	cp := checkpoint{in: f.bitPos(), out: b.total, hdr: -1}
	if f.state != stHeader {
		cp.hdr = f.hdrBit
	}
	w := f.out[max(f.histLo, f.op-windowSize):f.op]
	cp.wlen = len(w)
	cp.window, cp.packed = b.pack(w)
	b.ix.cps = append(b.ix.cps, cp)
	b.lastIn, b.lastOut = f.src.offset(), cp.out
	if len(b.ix.cps) > b.maxCP {
		b.thin()
	}
}

// pack returns a window deflate-compressed, or a copy of it when that is
// not smaller.
func (b *builder) pack(w []byte) ([]byte, bool) {
	if len(w) == 0 {
		return nil, false
	}
	b.zbuf.Reset()
	b.zw.Reset(&b.zbuf)
	_, werr := b.zw.Write(w)
	cerr := b.zw.Close()
	if werr == nil && cerr == nil && b.zbuf.Len() < len(w) {
		return bytes.Clone(b.zbuf.Bytes()), true
	}
	return bytes.Clone(w), false
}

// thin drops every other checkpoint, keeping the first, and doubles the
// span: consecutive checkpoints were at most a span apart, so they are now
// at most twice that, the new span.
func (b *builder) thin() {
	cps := b.ix.cps
	j := 1
	for i := 2; i < len(cps); i += 2 {
		cps[j] = cps[i]
		j++
	}
	clear(cps[j:])
	b.ix.cps = cps[:j]
	b.ix.span *= 2
	last := b.ix.cps[j-1]
	b.lastIn, b.lastOut = (last.in+7)/8, last.out
}

func (b *builder) report() {
	if b.progress == nil {
		return
	}
	if done := b.f.src.offset(); done-b.reported >= progressEvery {
		b.reported = done
		b.progress(done)
	}
}
