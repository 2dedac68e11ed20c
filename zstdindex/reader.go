package zstdindex

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"

	"github.com/ovfmount/ovfmount/internal/unitread"
)

const (
	// DefaultMaxUnit is the default Options.MaxUnit: 256 MiB. pzstd
	// writes frames of four times its level's window (measured: 2 MiB at
	// -1, 8 MiB at -3; 32 MiB at -19 by that rule), far below it; only
	// its --ultra levels -21 and -22 can write larger frames.
	DefaultMaxUnit = 256 << 20
	// MaxWindowLimit is the default and the largest Options.MaxWindow:
	// 128 MiB, the window of zstd --ultra -22 and of --long=27, the
	// default --long. Larger windows (--long=28 and up) are refused.
	MaxWindowLimit = 128 << 20
	// DefaultMaxUnits is the default Options.MaxUnits.
	DefaultMaxUnits = 1 << 20
	// DefaultDecoders is the default Options.Decoders; MaxDecoders the
	// largest.
	DefaultDecoders = 4
	MaxDecoders     = 16
)

const (
	frameMagic      = 0xFD2FB528
	skipMagicMask   = 0xFFFFFFF0
	skipMagic       = 0x184D2A50
	seekTableMagic  = 0x184D2A5E
	seekFooterMagic = 0x8F92EAB1
	seekFooterSize  = 9
	maxBlock        = 128 << 10
	// maxFrameHeader is the magic and the largest frame header.
	maxFrameHeader = 4 + 14
)

// Options bound what Open accepts and what a Reader may use. The zero
// value means the defaults.
type Options struct {
	// MaxUnit is the largest decompressed frame accepted: a cold read
	// decodes its frame from the start, so up to MaxUnit bytes. Larger
	// frames fail with ErrUnitTooLarge. 0 means DefaultMaxUnit.
	MaxUnit int64
	// MaxWindow is the largest window a frame may declare
	// (ErrWindowTooLarge); each decoder may hold that much. 0 means, and
	// more is lowered to, MaxWindowLimit.
	MaxWindow int64
	// MaxUnits is the most frames Open accepts (ErrTooManyUnits), which
	// bounds the memory the frame table takes. 0 means DefaultMaxUnits.
	MaxUnits int
	// Decoders is how many decoders a Reader keeps positioned between
	// reads. 0 means DefaultDecoders; at most MaxDecoders.
	Decoders int
	// CacheBytes bounds a cache of recently decoded 256 KiB pieces, which
	// serves re-reads that no decoder holds any more without decoding
	// from the frame's start again. 0 or negative means no cache, the
	// default: zstd decodes at GB/s, so copying every decoded piece into
	// a cache costs more than it saves (measured: sequential reads fell
	// from 2.2 GB/s to 0.7 GB/s with a 32 MiB cache) unless re-reads are
	// frequent and frames large.
	CacheBytes int
	// Progress, when set, is called while Open decodes frames that do not
	// state their content size, with the compressed bytes passed so far
	// and the input size.
	Progress func(done, total int64)
}

func (o *Options) fill() {
	if o.MaxUnit <= 0 {
		o.MaxUnit = DefaultMaxUnit
	}
	if o.MaxWindow <= 0 || o.MaxWindow > MaxWindowLimit {
		o.MaxWindow = MaxWindowLimit
	}
	if o.MaxUnits <= 0 {
		o.MaxUnits = DefaultMaxUnits
	}
	if o.Decoders <= 0 {
		o.Decoders = DefaultDecoders
	}
	o.Decoders = min(o.Decoders, MaxDecoders)
}

// Frame describes one zstd frame: a unit of random access.
type Frame struct {
	Offset int64 // compressed offset of its magic number
	CSize  int64 // compressed size, magic to checksum
	Out    int64 // decompressed offset
	Size   int64 // decompressed size
	// Window is the window its header declares; 0 when the frame came
	// from a seek table and has not been decoded yet.
	Window int64
}

// Reader is an io.ReaderAt over the decompressed bytes of a zstd file. It
// is safe for concurrent use.
type Reader struct {
	r        io.ReaderAt
	size     int64
	opt      Options
	seekable bool
	frames   []Frame
	ahead    *window // while Open walks the headers
	ur       *unitread.Reader
}

// Open finds the frames of the zstd file of size bytes in r and returns a
// Reader of its decompressed bytes. With a seek table (the zstd seekable
// format) it reads only the table at the end. Otherwise it walks the
// frame and block headers, skipping the data, and decodes only the frames
// whose headers do not state their content size, to learn it.
func Open(r io.ReaderAt, size int64, opt Options) (*Reader, error) {
	opt.fill()
	z := &Reader{r: r, size: size, opt: opt}
	var frames []Frame
	var err error
	if frames, err = z.seekTable(); err == nil && frames != nil {
		z.seekable = true
	} else if err != nil {
		return nil, err
	} else if frames, err = z.walk(); err != nil {
		return nil, err
	}
	var out int64
	for i := range frames {
		f := &frames[i]
		if f.Size > opt.MaxUnit {
			return nil, fmt.Errorf("zstdindex: frame at offset %d decompresses to %d bytes, over the limit of %d: %w", f.Offset, f.Size, opt.MaxUnit, ErrUnitTooLarge)
		}
		if out > math.MaxInt64-f.Size {
			return nil, fmt.Errorf("%w: decompressed size overflows", ErrFormat)
		}
		f.Out = out
		out += f.Size
		if f.Size > 0 {
			z.frames = append(z.frames, *f)
		}
	}
	units := make([]unitread.Unit, len(z.frames))
	for i, f := range z.frames {
		units[i] = unitread.Unit{Off: f.Out, Len: f.Size}
	}
	z.ur = unitread.New(unitread.Config{Name: "zstdindex", Units: units, Open: z.openFrame, Corrupt: ErrCorrupt, Decoders: opt.Decoders, CacheBytes: opt.CacheBytes})
	return z, nil
}

// Size returns the decompressed size.
func (z *Reader) Size() int64 { return z.ur.Size() }

// Frames returns the non-empty frames in order.
func (z *Reader) Frames() []Frame { return append([]Frame(nil), z.frames...) }

// Units returns how many non-empty frames the file holds and the largest
// one's decompressed size: what a cold read may have to decode.
func (z *Reader) Units() (count int, largest int64) {
	for _, f := range z.frames {
		largest = max(largest, f.Size)
	}
	return len(z.frames), largest
}

// Seekable reports whether Open found a seek table.
func (z *Reader) Seekable() bool { return z.seekable }

// ReadAt implements io.ReaderAt over the decompressed bytes. A read
// decodes the frames it covers, from a frame's start or from where an
// earlier read left a decoder; a frame's checksum is verified when it is
// decoded to its end.
func (z *Reader) ReadAt(p []byte, off int64) (int, error) { return z.ur.ReadAt(p, off) }

func (z *Reader) read(p []byte, off int64) error {
	if off < 0 || off > z.size-int64(len(p)) {
		return fmt.Errorf("%w: %d bytes at offset %d pass the end (%d)", ErrTruncated, len(p), off, z.size)
	}
	n, err := z.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("zstdindex: reading at offset %d: %w", off, err)
}

// window is a read-ahead buffer for the walk over headers, which are
// often close together: a run of zeros compresses to blocks of a few
// bytes each, and reading each block header alone would cost a read per
// 128 KiB of output.
type window struct {
	buf []byte
	off int64 // the file offset of buf[0]
	n   int   // buf[:n] is valid
}

// readAhead is read through the read-ahead window.
func (z *Reader) readAhead(p []byte, off int64) error {
	w := z.ahead
	if off < w.off || off+int64(len(p)) > w.off+int64(w.n) {
		if len(p) > len(w.buf) || off < 0 || off >= z.size {
			return z.read(p, off)
		}
		n := int(min(int64(len(w.buf)), z.size-off))
		if err := z.read(w.buf[:n], off); err != nil {
			return err
		}
		w.off, w.n = off, n
		if off+int64(len(p)) > w.off+int64(w.n) {
			return z.read(p, off) // past the end: its error
		}
	}
	copy(p, w.buf[off-w.off:])
	return nil
}

// header is a parsed frame header.
type header struct {
	size     int // magic and header
	window   int64
	fcs      int64 // -1 when absent
	checksum bool
	dictID   uint32
}

// parseHeader parses the frame header at the start of b (the magic
// already checked), which holds up to maxFrameHeader bytes.
func parseHeader(b []byte) (header, error) {
	h := header{fcs: -1}
	if len(b) < 5 {
		return h, ErrTruncated
	}
	fhd := b[4]
	if fhd&0x08 != 0 {
		return h, fmt.Errorf("%w: reserved frame header bit set", ErrFormat)
	}
	single := fhd&0x20 != 0
	h.checksum = fhd&0x04 != 0
	didSize := [4]int{0, 1, 2, 4}[fhd&3]
	fcsSize := [4]int{0, 2, 4, 8}[fhd>>6]
	if fcsSize == 0 && single {
		fcsSize = 1
	}
	h.size = 5 + didSize + fcsSize
	if !single {
		h.size++
	}
	if len(b) < h.size {
		return h, ErrTruncated
	}
	p := 5
	if !single {
		wd := b[p]
		p++
		log := 10 + int64(wd>>3)
		base := int64(1) << log
		h.window = base + base/8*int64(wd&7)
	}
	switch didSize {
	case 1:
		h.dictID = uint32(b[p])
	case 2:
		h.dictID = uint32(binary.LittleEndian.Uint16(b[p:]))
	case 4:
		h.dictID = binary.LittleEndian.Uint32(b[p:])
	}
	p += didSize
	switch fcsSize {
	case 1:
		h.fcs = int64(b[p])
	case 2:
		h.fcs = int64(binary.LittleEndian.Uint16(b[p:])) + 256
	case 4:
		h.fcs = int64(binary.LittleEndian.Uint32(b[p:]))
	case 8:
		v := binary.LittleEndian.Uint64(b[p:])
		if v > math.MaxInt64 {
			return h, fmt.Errorf("%w: frame content size %d out of range", ErrFormat, v)
		}
		h.fcs = int64(v)
	}
	if single {
		h.window = h.fcs
	}
	return h, nil
}

// check refuses a frame header that needs a dictionary or too large a
// window.
func (z *Reader) check(h header, off int64) error {
	if h.dictID != 0 {
		return fmt.Errorf("zstdindex: frame at offset %d needs dictionary %d: %w", off, h.dictID, ErrUnsupported)
	}
	if h.window > z.opt.MaxWindow {
		return fmt.Errorf("zstdindex: frame at offset %d has a %d-byte window, over the limit of %d: %w", off, h.window, z.opt.MaxWindow, ErrWindowTooLarge)
	}
	return nil
}

// walk finds the frames by reading frame and block headers from the start.
func (z *Reader) walk() ([]Frame, error) {
	z.ahead = &window{buf: make([]byte, int(min(64<<10, z.size)))}
	defer func() { z.ahead = nil }()
	var frames []Frame
	var d *zstd.Decoder // for the frames measure decodes
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	var buf [maxFrameHeader]byte
	for off := int64(0); off < z.size; {
		b := buf[:min(int64(len(buf)), z.size-off)]
		if len(b) < 4 {
			return nil, z.trailing(off)
		}
		if err := z.readAhead(b, off); err != nil {
			return nil, err
		}
		magic := binary.LittleEndian.Uint32(b)
		if magic&skipMagicMask == skipMagic {
			if len(b) < 8 {
				return nil, fmt.Errorf("zstdindex: skippable frame at offset %d: %w", off, ErrTruncated)
			}
			n := 8 + int64(binary.LittleEndian.Uint32(b[4:]))
			if n > z.size-off {
				return nil, fmt.Errorf("zstdindex: skippable frame at offset %d: %w", off, ErrTruncated)
			}
			off += n
			continue
		}
		if magic != frameMagic {
			return nil, z.trailing(off)
		}
		if len(frames) >= z.opt.MaxUnits {
			return nil, fmt.Errorf("zstdindex: more than %d frames: %w", z.opt.MaxUnits, ErrTooManyUnits)
		}
		h, err := parseHeader(b)
		if err != nil {
			return nil, fmt.Errorf("zstdindex: frame at offset %d: %w", off, err)
		}
		if err := z.check(h, off); err != nil {
			return nil, err
		}
		end, err := z.skipBlocks(off, off+int64(h.size), h)
		if err != nil {
			return nil, err
		}
		f := Frame{Offset: off, CSize: end - off, Size: h.fcs, Window: h.window}
		if h.fcs < 0 {
			if d == nil {
				if d, err = z.newDecoder(); err != nil {
					return nil, err
				}
			}
			if f.Size, err = z.measure(d, f); err != nil {
				return nil, err
			}
		}
		frames = append(frames, f)
		off = end
	}
	return frames, nil
}

func (z *Reader) trailing(off int64) error {
	if off == 0 {
		return fmt.Errorf("%w: no zstd or skippable frame magic at offset 0", ErrNotZstd)
	}
	return fmt.Errorf("%w: %d bytes after the last frame, at offset %d, are no frame", ErrFormat, z.size-off, off)
}

// skipBlocks walks the block headers of the frame at off from pos, and
// returns where the frame ends.
func (z *Reader) skipBlocks(off, pos int64, h header) (int64, error) {
	var b [3]byte
	maxSize := int64(maxBlock)
	if h.window > 0 {
		maxSize = min(maxSize, h.window)
	}
	for {
		if err := z.readAhead(b[:], pos); err != nil {
			return 0, fmt.Errorf("zstdindex: frame at offset %d: block header at offset %d: %w", off, pos, ErrTruncated)
		}
		v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		last, typ, n := v&1 != 0, (v>>1)&3, int64(v>>3)
		pos += 3
		switch typ {
		case 1: // RLE: one byte, repeated n times
			if n > maxSize {
				return 0, fmt.Errorf("%w: frame at offset %d: RLE block at offset %d of %d bytes", ErrFormat, off, pos-3, n)
			}
			n = 1
		case 3:
			return 0, fmt.Errorf("%w: frame at offset %d: reserved block type at offset %d", ErrFormat, off, pos-3)
		}
		if n > maxSize {
			return 0, fmt.Errorf("%w: frame at offset %d: block at offset %d of %d bytes", ErrFormat, off, pos-3, n)
		}
		pos += n
		if pos > z.size {
			return 0, fmt.Errorf("zstdindex: frame at offset %d: block at offset %d: %w", off, pos-3-n, ErrTruncated)
		}
		if last {
			break
		}
	}
	if h.checksum {
		pos += 4
	}
	if pos > z.size {
		return 0, fmt.Errorf("zstdindex: frame at offset %d: checksum: %w", off, ErrTruncated)
	}
	return pos, nil
}

// measure decodes frame f, which does not state its size, to learn it,
// giving up past MaxUnit.
func (z *Reader) measure(d *zstd.Decoder, f Frame) (int64, error) {
	src := &progressReader{r: bufio.NewReaderSize(io.NewSectionReader(z.r, f.Offset, f.CSize), 32<<10), base: f.Offset, z: z}
	if err := d.Reset(src); err != nil {
		return 0, z.decodeErr(f.Offset, err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(d, z.opt.MaxUnit+1))
	if err != nil {
		return 0, z.decodeErr(f.Offset, err)
	}
	if n > z.opt.MaxUnit {
		return 0, fmt.Errorf("zstdindex: frame at offset %d decompresses to more than the limit of %d bytes: %w", f.Offset, z.opt.MaxUnit, ErrUnitTooLarge)
	}
	return n, nil
}

// progressReader reports Open's progress through a frame it decodes.
type progressReader struct {
	r    io.Reader
	base int64
	done int64
	next int64
	z    *Reader
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.z.opt.Progress != nil && (p.done >= p.next || err != nil) {
		p.z.opt.Progress(p.base+p.done, p.z.size)
		p.next = p.done + 4<<20
	}
	return n, err
}

func (z *Reader) newDecoder() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(uint64(z.opt.MaxWindow)),
		zstd.WithDecoderMaxMemory(uint64(max(z.opt.MaxWindow, z.opt.MaxUnit))),
	)
}

// decodeErr classifies an error of the zstd decoder.
func (z *Reader) decodeErr(off int64, err error) error {
	switch {
	case errors.Is(err, zstd.ErrCRCMismatch):
		err = ErrChecksum
	case errors.Is(err, zstd.ErrWindowSizeExceeded):
		err = fmt.Errorf("%w: %w", ErrWindowTooLarge, err)
	case errors.Is(err, zstd.ErrUnknownDictionary):
		err = fmt.Errorf("%w: %w", ErrUnsupported, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: %w", ErrTruncated, err)
	default:
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("zstdindex: frame at offset %d: %w", off, err)
}

// seekTable returns the frames a seek table at the end lists, nil if
// there is none.
func (z *Reader) seekTable() ([]Frame, error) {
	if z.size < 8+seekFooterSize {
		return nil, nil
	}
	var ft [seekFooterSize]byte
	if err := z.read(ft[:], z.size-seekFooterSize); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(ft[5:]) != seekFooterMagic {
		return nil, nil
	}
	n := int64(binary.LittleEndian.Uint32(ft[:4]))
	desc := ft[4]
	if desc&0x7c != 0 {
		return nil, fmt.Errorf("%w: seek table descriptor %#x has reserved bits set", ErrFormat, desc)
	}
	es := int64(8)
	if desc&0x80 != 0 {
		es = 12
	}
	if n > int64(z.opt.MaxUnits) {
		return nil, fmt.Errorf("zstdindex: the seek table lists %d frames, over the limit of %d: %w", n, z.opt.MaxUnits, ErrTooManyUnits)
	}
	tsize := n*es + seekFooterSize
	start := z.size - tsize - 8
	if start < 0 {
		return nil, fmt.Errorf("%w: a seek table of %d frames is larger than the file", ErrFormat, n)
	}
	var sh [8]byte
	if err := z.read(sh[:], start); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(sh[:]) != seekTableMagic || int64(binary.LittleEndian.Uint32(sh[4:])) != tsize {
		return nil, fmt.Errorf("%w: no seek table skippable frame of %d bytes at offset %d", ErrFormat, tsize, start)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(z.r, start+8, n*es), int(min(16<<10, n*es+16)))
	frames := make([]Frame, 0, n)
	var e [12]byte
	var off int64
	for i := int64(0); i < n; i++ {
		if _, err := io.ReadFull(br, e[:es]); err != nil {
			return nil, fmt.Errorf("zstdindex: reading the seek table: %w", err)
		}
		c := int64(binary.LittleEndian.Uint32(e[:]))
		d := int64(binary.LittleEndian.Uint32(e[4:]))
		if c < 9 && !(c == 0 && d == 0) {
			return nil, fmt.Errorf("%w: seek table entry %d: a %d-byte frame", ErrFormat, i, c)
		}
		if c > start-off {
			return nil, fmt.Errorf("%w: the seek table lists more compressed bytes than precede it", ErrFormat)
		}
		if c > 0 {
			frames = append(frames, Frame{Offset: off, CSize: c, Size: d})
		}
		off += c
	}
	if off != start {
		return nil, fmt.Errorf("%w: the seek table lists %d compressed bytes, %d precede it", ErrFormat, off, start)
	}
	return frames, nil
}

// frameReader decodes one frame.
type frameReader struct {
	z   *Reader
	d   *zstd.Decoder
	br  *bufio.Reader
	off int64
	err error
}

func (z *Reader) openFrame(i int, old io.Reader) (io.Reader, error) {
	f := &z.frames[i]
	fr, _ := old.(*frameReader)
	if fr == nil {
		d, err := z.newDecoder()
		if err != nil {
			return nil, err
		}
		fr = &frameReader{z: z, d: d}
	}
	fr.off, fr.err = f.Offset, nil
	var b [maxFrameHeader]byte
	hb := b[:min(int64(len(b)), f.CSize)]
	if err := z.read(hb, f.Offset); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(hb) != frameMagic {
		return nil, fmt.Errorf("%w: no frame magic at offset %d, where the seek table puts a frame", ErrFormat, f.Offset)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, fmt.Errorf("zstdindex: frame at offset %d: %w", f.Offset, err)
	}
	if err := z.check(h, f.Offset); err != nil {
		return nil, err
	}
	if h.fcs >= 0 && h.fcs != f.Size {
		return nil, fmt.Errorf("%w: frame at offset %d: its header says %d bytes, the seek table %d", ErrFormat, f.Offset, h.fcs, f.Size)
	}
	// Buffered: blocks of a run of zeros are a few bytes each, which the
	// decoder would otherwise fetch with a read each.
	sec := io.NewSectionReader(z.r, f.Offset, f.CSize)
	if fr.br == nil {
		fr.br = bufio.NewReaderSize(sec, 32<<10)
	} else {
		fr.br.Reset(sec)
	}
	if err := fr.d.Reset(fr.br); err != nil {
		return nil, z.decodeErr(f.Offset, err)
	}
	return fr, nil
}

func (fr *frameReader) Read(p []byte) (int, error) {
	if fr.err != nil {
		return 0, fr.err
	}
	n, err := fr.d.Read(p)
	if err != nil && err != io.EOF {
		fr.err = fr.z.decodeErr(fr.off, err)
		return n, fr.err
	}
	return n, err
}
