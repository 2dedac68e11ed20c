package gzindex

import (
	"errors"
	"fmt"
)

// This file holds a raw deflate (RFC 1951) decoder that, unlike
// compress/flate and klauspost/compress/flate, can stop between any two
// symbols and later resume there, in the middle of a block, from a bit
// offset, the offset of the block's header, and the 32 KiB window. That is
// what lets Build put a checkpoint every span bytes whatever the block
// sizes are: a hostile or unusual stream may hold gigabytes in one block,
// and checkpoints only at block boundaries could then not bound the work of
// a read.

const (
	windowSize = 1 << 15
	maxMatch   = 258
	// outSlack is the room a decode step needs past its stop offset: a
	// match may end 257 bytes past it, and match copies move 8 bytes at a
	// time, writing up to 7 bytes beyond the match.
	outSlack = maxMatch + 8
)

type blockState uint8

const (
	stHeader  blockState = iota // a block header comes next
	stStored                    // inside a stored block
	stHuffman                   // inside a fixed or dynamic Huffman block
	stDone                      // the final block has ended
)

// inflater decodes one deflate stream at a time into out. out[:op] always
// holds decoded bytes, the newest last; matches may reach back to histLo,
// where the current gzip member's output starts (or the window begins).
type inflater struct {
	src    source
	bits   uint64 // unconsumed input bits, least significant first
	nb     uint   // number of valid bits in bits
	out    []byte
	op     int
	histLo int

	outStop int // limits of the current fill
	inStop  int64

	state  blockState
	final  bool  // the current (or just ended) block is the last one
	stored int   // bytes left in the current stored block
	hdrBit int64 // stream bit offset of the current block's header

	lit     *[litTableSize]uint32
	dist    *[distTableSize]uint32
	dynLit  [litTableSize]uint32
	dynDist [distTableSize]uint32
	clen    [1 << clenBits]uint32
	lens    [maxLitCodes + maxDist]uint8
}

func newInflater(outSize, inSize int) *inflater {
	return &inflater{
		out: make([]byte, outSize),
		src: source{buf: make([]byte, inSize)},
	}
}

// bitPos is the stream bit offset of the next unconsumed bit.
func (f *inflater) bitPos() int64 { return f.src.offset()*8 - int64(f.nb) }

func (f *inflater) corrupt(msg string) error {
	return fmt.Errorf("%w: %s (compressed byte %d)", ErrCorrupt, msg, f.bitPos()/8)
}

func (f *inflater) inputErr(err error) error {
	if errors.Is(err, errEnd) {
		return fmt.Errorf("%w: the deflate data stops at compressed byte %d", ErrTruncated, f.src.offset())
	}
	return fmt.Errorf("gzindex: reading compressed byte %d: %w", f.src.offset(), err)
}

// seekBit positions the decoder at stream bit offset pos.
func (f *inflater) seekBit(pos int64) error {
	f.src.seek(pos / 8)
	f.bits, f.nb = 0, 0
	if r := uint(pos % 8); r != 0 {
		if err := f.need(r); err != nil {
			return err
		}
		f.drop(r)
	}
	return nil
}

// startStream prepares for a deflate stream at the source's position whose
// output may not refer to anything decoded before it.
func (f *inflater) startStream() {
	f.bits, f.nb = 0, 0
	f.state = stHeader
	f.final = false
	f.histLo = f.op
}

// slide discards all but the last window of output, making room.
func (f *inflater) slide() {
	keep := min(windowSize, f.op)
	shift := f.op - keep
	copy(f.out, f.out[shift:f.op])
	f.op = keep
	f.histLo = max(0, f.histLo-shift)
}

// need makes at least n bits available, loading one byte at a time. The
// bits above nb are zero or, after a fast refill, the true next bits of
// the stream (the partly loaded next byte), so OR-ing that byte in is
// exact either way.
func (f *inflater) need(n uint) error {
	for f.nb < n {
		if f.src.pos == f.src.n {
			if err := f.src.more(); err != nil {
				return f.inputErr(err)
			}
		}
		f.bits |= uint64(f.src.buf[f.src.pos]) << f.nb
		f.src.pos++
		f.nb += 8
	}
	return nil
}

func (f *inflater) drop(n uint) {
	f.bits >>= n
	f.nb -= n
}

func (f *inflater) take(n uint) (uint32, error) {
	if err := f.need(n); err != nil {
		return 0, err
	}
	v := uint32(f.bits & (1<<n - 1))
	f.drop(n)
	return v, nil
}

// fill decodes until op reaches outStop (it may pass it by up to a match
// length; outStop is lowered to leave outSlack bytes of room), the input
// consumed reaches compressed byte inStop, or the final block ends. It
// always stops between two symbols. The input position it compares with
// inStop is the source's, which runs up to 8 bytes ahead of bitPos.
func (f *inflater) fill(outStop int, inStop int64) error {
	f.outStop = min(outStop, len(f.out)-outSlack)
	f.inStop = inStop
	for f.op < f.outStop && f.src.offset() < f.inStop {
		var err error
		switch f.state {
		case stHeader:
			err = f.blockHeader()
		case stStored:
			err = f.copyStored()
		case stHuffman:
			err = f.huffman()
		default:
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *inflater) endBlock() {
	if f.final {
		f.state = stDone
	} else {
		f.state = stHeader
	}
}

// blockHeader reads a block header and, for a dynamic block, its code
// descriptions (RFC 1951 section 3.2.7).
func (f *inflater) blockHeader() error {
	f.hdrBit = f.bitPos()
	h, err := f.take(3)
	if err != nil {
		return err
	}
	f.final = h&1 == 1
	switch h >> 1 {
	case 0:
		f.drop(f.nb % 8)
		lens, err := f.take(32)
		if err != nil {
			return err
		}
		if uint16(lens) != ^uint16(lens>>16) {
			return f.corrupt("stored block length does not match its complement")
		}
		f.stored = int(lens & 0xffff)
		f.state = stStored
		if f.stored == 0 {
			f.endBlock()
		}
		return nil
	case 1:
		f.lit, f.dist = fixedLit, fixedDist
		f.state = stHuffman
		return nil
	case 2:
		if err := f.dynamicTables(); err != nil {
			return err
		}
		f.lit, f.dist = &f.dynLit, &f.dynDist
		f.state = stHuffman
		return nil
	}
	return f.corrupt("reserved block type 3")
}

func (f *inflater) dynamicTables() error {
	h, err := f.take(14)
	if err != nil {
		return err
	}
	nlit := int(h&31) + 257
	ndist := int(h>>5&31) + 1
	nclen := int(h>>10) + 4
	if nlit > maxLitCodes {
		return f.corrupt("too many literal/length codes")
	}
	if ndist > maxDist {
		return f.corrupt("too many distance codes")
	}
	var clens [numClen]uint8
	for i := range nclen {
		v, err := f.take(3)
		if err != nil {
			return err
		}
		clens[clenOrder[i]] = uint8(v)
	}
	if !buildTable(f.clen[:], clens[:], clenBits, clenEntry) {
		return f.corrupt("invalid code length code")
	}
	lens := f.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		e, err := f.decodeSlow(f.clen[:], clenBits)
		if err != nil {
			return err
		}
		sym := e >> entryValShift
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep uint32
		var fill uint8
		switch sym {
		case 16:
			if i == 0 {
				return f.corrupt("repeated code length with no previous length")
			}
			fill = lens[i-1]
			rep, err = f.take(2)
			rep += 3
		case 17:
			rep, err = f.take(3)
			rep += 3
		default:
			rep, err = f.take(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if i+int(rep) > len(lens) {
			return f.corrupt("code lengths overflow their count")
		}
		for range rep {
			lens[i] = fill
			i++
		}
	}
	if lens[256] == 0 {
		return f.corrupt("no code for the end of block")
	}
	if !buildTable(f.dynLit[:], lens[:nlit], litBits, litEntry) {
		return f.corrupt("invalid literal/length code")
	}
	if !buildTable(f.dynDist[:], lens[nlit:], distBits, distEntry) {
		return f.corrupt("invalid distance code")
	}
	return nil
}

// decodeSlow decodes one symbol reading input a byte at a time, for code
// descriptions and the last bytes of the stream.
func (f *inflater) decodeSlow(table []uint32, pb uint) (uint32, error) {
	for {
		e := table[f.bits&(1<<pb-1)]
		if entryKind(e) == kindLink {
			sub := uint(e >> entryExtraShft & 15)
			e = table[int(e>>entryValShift)+int(f.bits>>pb&(1<<sub-1))]
		}
		// Complete codes fill every table entry, so an empty one is a bit
		// pattern an incomplete code leaves unused, whatever follows.
		if e == 0 {
			return 0, f.corrupt("invalid Huffman code")
		}
		n := uint(e & entryLenMask)
		if n <= f.nb {
			if entryKind(e) == kindInvalid {
				return 0, f.corrupt("reserved symbol")
			}
			f.drop(n)
			return e, nil
		}
		if err := f.need(f.nb + 1); err != nil {
			return 0, err
		}
	}
}

func (f *inflater) copyStored() error {
	// Whole bytes already in the bit buffer come first.
	for f.nb >= 8 && f.stored > 0 && f.op < f.outStop {
		f.out[f.op] = byte(f.bits)
		f.drop(8)
		f.op++
		f.stored--
	}
	for f.stored > 0 && f.op < f.outStop && f.src.offset() < f.inStop {
		// The bit buffer is empty here, but its upper bits may still hold
		// a partly loaded byte that is about to be copied directly.
		f.bits = 0
		if f.src.pos == f.src.n {
			if err := f.src.more(); err != nil {
				return f.inputErr(err)
			}
		}
		k := min(f.outStop-f.op, f.stored, f.src.n-f.src.pos)
		if left := f.inStop - f.src.offset(); left < int64(k) {
			k = int(left)
		}
		copy(f.out[f.op:f.op+k], f.src.buf[f.src.pos:])
		f.src.pos += k
		f.op += k
		f.stored -= k
	}
	if f.stored == 0 {
		f.endBlock()
	}
	return nil
}

// huffman decodes symbols of a Huffman block: in bulk while at least 8
// input bytes are buffered, symbol by symbol near the end of the stream.
func (f *inflater) huffman() error {
	for f.state == stHuffman && f.op < f.outStop && f.src.offset() < f.inStop {
		if f.src.n-f.src.pos >= 8 {
			if err := f.huffmanFast(); err != nil {
				return err
			}
			continue
		}
		if err := f.src.avail(8); err == nil {
			continue
		} else if !errors.Is(err, errEnd) {
			return f.inputErr(err)
		}
		if err := f.huffmanSymbol(); err != nil {
			return err
		}
	}
	return nil
}

// huffmanSymbol decodes one symbol with byte-at-a-time input.
func (f *inflater) huffmanSymbol() error {
	e, err := f.decodeSlow(f.lit[:], litBits)
	if err != nil {
		return err
	}
	switch entryKind(e) {
	case kindLiteral:
		f.out[f.op] = byte(e >> entryValShift)
		f.op++
		return nil
	case kindEnd:
		f.endBlock()
		return nil
	}
	extra, err := f.take(uint(e >> entryExtraShft & 15))
	if err != nil {
		return err
	}
	length := int(e>>entryValShift) + int(extra)
	d, err := f.decodeSlow(f.dist[:], distBits)
	if err != nil {
		return err
	}
	extra, err = f.take(uint(d >> entryExtraShft & 15))
	if err != nil {
		return err
	}
	dist := int(d>>entryValShift) + int(extra)
	if dist > f.op-f.histLo {
		return f.corrupt("distance reaches before the start of the data")
	}
	for i := range length {
		f.out[f.op+i] = f.out[f.op-dist+i]
	}
	f.op += length
	return nil
}
