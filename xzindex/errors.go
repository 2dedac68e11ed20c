package xzindex

import "errors"

// Sentinel errors. Returned errors wrap one of these with the detail and
// the offset concerned, so callers classify them with errors.Is.
var (
	// ErrNotXZ means the input does not end with an xz stream footer or
	// does not start with an xz stream header.
	ErrNotXZ = errors.New("xzindex: not an xz stream")
	// ErrFormat means an xz structure (stream header or footer, index,
	// block header, padding) is malformed or disagrees with another.
	ErrFormat = errors.New("xzindex: malformed xz stream")
	// ErrCorrupt means a block's LZMA2 data does not decode, or decodes to
	// other sizes than its index and header say.
	ErrCorrupt = errors.New("xzindex: corrupt block data")
	// ErrChecksum means a CRC32 of an xz structure, or a block's integrity
	// check (CRC32, CRC64 or SHA-256), does not match.
	ErrChecksum = errors.New("xzindex: checksum mismatch")
	// ErrUnsupported means a block uses a filter other than LZMA2 alone
	// (BCJ, delta, ...) or the stream a check type xz does not define.
	ErrUnsupported = errors.New("xzindex: unsupported xz feature")
	// ErrDictTooLarge means a block's LZMA2 dictionary exceeds
	// Options.MaxDict.
	ErrDictTooLarge = errors.New("xzindex: LZMA2 dictionary larger than the limit")
	// ErrUnitTooLarge means a block decompresses to more than
	// Options.MaxUnit: random access inside it would cost decoding all of
	// it on every cold read. Recompress with independent blocks:
	// "xz -T0" (blocks of three times the dictionary, 24 MiB at -6) or
	// "xz --block-size=16MiB".
	ErrUnitTooLarge = errors.New("xzindex: xz block too large for random access; recompress with independent blocks: xz -T0 or xz --block-size=16MiB")
	// ErrTooManyUnits means the index lists more blocks than
	// Options.MaxUnits.
	ErrTooManyUnits = errors.New("xzindex: too many xz blocks")
)
