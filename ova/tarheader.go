package ova

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// blockSize is the tar record unit: headers and member data are aligned to it.
const blockSize = 512

// Header field offsets in a tar block. ustar and GNU agree on the first 345
// bytes; after that ustar has a name prefix and GNU has times and an inline
// sparse map.
const (
	offName     = 0
	offMode     = 100
	offUID      = 108
	offGID      = 116
	offSize     = 124
	offMtime    = 136
	offChksum   = 148
	offType     = 156
	offLinkname = 157
	offMagic    = 257
	offPrefix   = 345 // ustar only, 155 bytes

	offGNUSparse     = 386 // 4 entries of offset[12] + numbytes[12]
	offGNUIsExtended = 482
	offGNURealSize   = 483
)

// Type flags, as stored in byte 156.
const (
	typeReg       = '0'
	typeRegA      = 0 // pre-POSIX regular file
	typeLink      = '1'
	typeSymlink   = '2'
	typeChar      = '3'
	typeBlock     = '4'
	typeDir       = '5'
	typeFifo      = '6'
	typeCont      = '7' // contiguous file: a regular file everywhere else
	typeXHeader   = 'x' // pax extended header for the next entry
	typeXGlobal   = 'g' // pax global header
	typeGNULong   = 'L' // GNU long name for the next entry
	typeGNULink   = 'K' // GNU long link name for the next entry
	typeGNUSparse = 'S' // old GNU sparse file
	typeGNUDump   = 'D' // GNU incremental dump directory
	typeGNUMulti  = 'M' // GNU multi-volume continuation
	typeGNUVol    = 'V' // GNU volume label
	typeGNUNames  = 'N' // old GNU long-names list
)

type rawHeader []byte // exactly blockSize bytes

type tarFormat uint8

const (
	formatV7 tarFormat = iota
	formatUSTAR
	formatGNU
)

func (h rawHeader) format() tarFormat {
	m := h[offMagic : offMagic+8]
	switch {
	case bytes.Equal(m, []byte("ustar  \x00")):
		return formatGNU
	case bytes.Equal(m[:6], []byte("ustar\x00")), bytes.Equal(m[:6], []byte("ustar ")):
		return formatUSTAR
	}
	return formatV7
}

func isZeroBlock(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checksumOK accepts the unsigned sum POSIX specifies and the signed sum
// some historic tars wrote, as GNU tar does.
func (h rawHeader) checksumOK() bool {
	stored, err := parseOctal(h[offChksum : offChksum+8])
	if err != nil {
		return false
	}
	var unsigned, signed int64
	for i, c := range h {
		if i >= offChksum && i < offChksum+8 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return stored == unsigned || stored == signed
}

// cString returns a field up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func (h rawHeader) name() string {
	name := cString(h[offName : offName+100])
	if h.format() == formatUSTAR {
		if prefix := cString(h[offPrefix : offPrefix+155]); prefix != "" {
			name = prefix + "/" + name
		}
	}
	return name
}

var errNumber = errors.New("invalid numeric field")

// parseNumber reads a numeric header field: octal text, or GNU/star
// base-256 when the high bit of the first byte is set (sizes over 8 GiB).
func parseNumber(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		return parseBase256(b)
	}
	return parseOctal(b)
}

func parseBase256(b []byte) (int64, error) {
	// Two's complement: a negative value is stored inverted, so invert it
	// back byte by byte and undo that at the end.
	var inv byte
	if b[0]&0x40 != 0 {
		inv = 0xff
	}
	var x uint64
	for i, c := range b {
		c ^= inv
		if i == 0 {
			c &= 0x7f
		}
		if x>>56 != 0 {
			return 0, fmt.Errorf("%w: base-256 value overflows", errNumber)
		}
		x = x<<8 | uint64(c)
	}
	if x>>63 != 0 {
		return 0, fmt.Errorf("%w: base-256 value overflows", errNumber)
	}
	if inv == 0xff {
		return ^int64(x), nil
	}
	return int64(x), nil
}

func parseOctal(b []byte) (int64, error) {
	s := string(bytes.Trim(b, " \x00"))
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 8, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", errNumber, s)
	}
	return int64(v), nil
}

// dataBlocks is the number of bytes a member's data occupies, rounded up to
// whole blocks, or false if that overflows.
func paddedSize(size int64) (int64, bool) {
	if size < 0 || size > math.MaxInt64-blockSize {
		return 0, false
	}
	return (size + blockSize - 1) &^ (blockSize - 1), true
}

// IsTarHeader reports whether b starts with a tar header whose checksum
// holds: how a folder of downloads tells archives from other files
// without reading more than a block.
func IsTarHeader(b []byte) bool {
	if len(b) < blockSize || isZeroBlock(b[:blockSize]) {
		return false
	}
	return rawHeader(b[:blockSize]).checksumOK()
}
