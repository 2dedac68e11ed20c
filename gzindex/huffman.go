package gzindex

import "math/bits"

// Decoding tables map the next bits of the stream (least significant bit
// first, as deflate packs them) to an entry. Codes no longer than the
// table's primary width resolve in one lookup; longer codes go through a
// per-prefix subtable, so a table stays a few KiB and fits in L1 cache.
//
// An entry packs, from the least significant bit:
//
//	bits 0-4   bits to consume: the code length, or the primary width for a subtable link
//	bits 5-8   extra bits that follow the code, or the subtable's index width for a link
//	bits 9-11  kind
//	bits 16-31 value: the literal byte, the length or distance base, or the subtable's offset
const (
	entryLenMask   = 0x1f
	entryExtraShft = 5
	entryKindShift = 9
	entryValShift  = 16

	kindInvalid = 0 // a bit pattern no code uses, or a symbol deflate forbids
	kindLiteral = 1
	kindBase    = 2 // a length (with extra bits) or a distance (with extra bits)
	kindEnd     = 3 // end of block
	kindLink    = 4 // continue in a subtable
)

const (
	maxCodeLen  = 15
	litBits     = 11 // primary width of the literal/length table
	distBits    = 8  // primary width of the distance table
	clenBits    = 7  // code length codes are at most 7 bits: one level
	numLitCodes = 288
	maxLitCodes = 286 // HLIT + 257 may not exceed this
	numDist     = 32
	maxDist     = 30 // HDIST + 1 may not exceed this
	numClen     = 19

	// A subtable holds 2^(longest code - primary width) entries and there is
	// at most one per code longer than the primary width, which bounds the
	// tables' sizes.
	litTableSize  = 1<<litBits + numLitCodes<<(maxCodeLen-litBits)
	distTableSize = 1<<distBits + numDist<<(maxCodeLen-distBits)
)

func entryKind(e uint32) uint32 { return e >> entryKindShift & 7 }

func makeEntry(kind, codeLen, extra, value uint32) uint32 {
	return codeLen | extra<<entryExtraShft | kind<<entryKindShift | value<<entryValShift
}

// Length and distance symbols: base value and number of extra bits
// (RFC 1951 section 3.2.5).
var (
	lengthBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
		35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
		3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
		257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
		7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// Order in which code length code lengths are transmitted.
var clenOrder = [numClen]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

func litEntry(sym int, n uint32) uint32 {
	switch {
	case sym < 256:
		return makeEntry(kindLiteral, n, 0, uint32(sym))
	case sym == 256:
		return makeEntry(kindEnd, n, 0, 0)
	case sym < 286:
		return makeEntry(kindBase, n, uint32(lengthExtra[sym-257]), uint32(lengthBase[sym-257]))
	}
	// 286 and 287 take part in the fixed code but may not occur.
	return makeEntry(kindInvalid, n, 0, 0)
}

func distEntry(sym int, n uint32) uint32 {
	if sym < maxDist {
		return makeEntry(kindBase, n, uint32(distExtra[sym]), uint32(distBase[sym]))
	}
	return makeEntry(kindInvalid, n, 0, 0)
}

func clenEntry(sym int, n uint32) uint32 { return makeEntry(kindLiteral, n, 0, uint32(sym)) }

// buildTable fills table with the canonical Huffman code given by lens,
// with primary width pb. It reports false when the lengths do not form a
// valid code. Like zlib and compress/flate, it accepts only complete codes,
// an empty code (no symbol has a length), and the degenerate code of a
// single one-bit symbol; any other incomplete or over-subscribed code is
// corrupt. Unused bit patterns decode as kindInvalid.
func buildTable(table []uint32, lens []uint8, pb uint, entry func(sym int, n uint32) uint32) bool {
	var count [maxCodeLen + 1]int
	maxLen := 0
	for _, n := range lens {
		count[n]++
		if int(n) > maxLen {
			maxLen = int(n)
		}
	}
	clear(table[:1<<pb])
	if maxLen == 0 {
		return true
	}
	count[0] = 0
	var next [maxCodeLen + 1]int
	code := 0
	for n := 1; n <= maxLen; n++ {
		code = (code + count[n-1]) << 1
		next[n] = code
	}
	// Kraft sum, in units of 2^-maxLen.
	left := 1
	for n := 1; n <= maxLen; n++ {
		left = left<<1 - count[n]
		if left < 0 {
			return false
		}
	}
	if left != 0 && !(maxLen == 1 && count[1] == 1) {
		return false
	}

	subBits := uint(0)
	if maxLen > int(pb) {
		subBits = uint(maxLen) - pb
	}
	used := 1 << pb // next free slot for a subtable
	for sym, n := range lens {
		if n == 0 {
			continue
		}
		c := next[n]
		next[n]++
		rev := int(bits.Reverse16(uint16(c)) >> (16 - n))
		e := entry(sym, uint32(n))
		if uint(n) <= pb {
			for i := rev; i < 1<<pb; i += 1 << n {
				table[i] = e
			}
			continue
		}
		low := rev & (1<<pb - 1)
		link := table[low]
		if entryKind(link) != kindLink {
			link = makeEntry(kindLink, uint32(pb), uint32(subBits), uint32(used))
			table[low] = link
			clear(table[used : used+1<<subBits])
			used += 1 << subBits
		}
		base := int(link >> entryValShift)
		for i := rev >> pb; i < 1<<subBits; i += 1 << (uint(n) - pb) {
			table[base+i] = e
		}
	}
	return true
}

// The fixed code of RFC 1951 section 3.2.6, built once.
var fixedLit, fixedDist = buildFixed()

func buildFixed() (*[litTableSize]uint32, *[distTableSize]uint32) {
	var lens [numLitCodes]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	lit := new([litTableSize]uint32)
	buildTable(lit[:], lens[:], litBits, litEntry)
	var dlens [numDist]uint8
	for i := range dlens {
		dlens[i] = 5
	}
	dist := new([distTableSize]uint32)
	buildTable(dist[:], dlens[:], distBits, distEntry)
	return lit, dist
}
