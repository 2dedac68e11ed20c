package zstdindex

import "errors"

// Sentinel errors. Returned errors wrap one of these with the detail and
// the offset concerned, so callers classify them with errors.Is.
var (
	// ErrNotZstd means the input does not start with a zstd or skippable
	// frame.
	ErrNotZstd = errors.New("zstdindex: not a zstd stream")
	// ErrFormat means a frame header, block header, skippable frame or
	// seek table is malformed, or bytes that are no frame follow the
	// frames.
	ErrFormat = errors.New("zstdindex: malformed zstd stream")
	// ErrTruncated means the input ends inside a frame.
	ErrTruncated = errors.New("zstdindex: truncated zstd stream")
	// ErrCorrupt means a frame's data does not decode, or decodes to
	// another size than its header or the seek table says.
	ErrCorrupt = errors.New("zstdindex: corrupt frame data")
	// ErrChecksum means a frame's content checksum (XXH64) does not match.
	ErrChecksum = errors.New("zstdindex: frame checksum mismatch")
	// ErrUnsupported means a frame needs a dictionary (a nonzero
	// Dictionary_ID), which the package does not have.
	ErrUnsupported = errors.New("zstdindex: unsupported zstd feature")
	// ErrWindowTooLarge means a frame's window exceeds Options.MaxWindow.
	ErrWindowTooLarge = errors.New("zstdindex: zstd window larger than the limit")
	// ErrUnitTooLarge means a frame decompresses to more than
	// Options.MaxUnit: random access inside it would cost decoding all of
	// it on every cold read. The zstd CLI writes one frame per file
	// whatever its options (-T and -B split the work, not the frame, and
	// --long makes the window larger); recompress with pzstd, which writes
	// independent frames, or compress fixed-size pieces (split -b 16M)
	// separately and concatenate them.
	ErrUnitTooLarge = errors.New("zstdindex: zstd frame too large for random access; recompress into independent frames with pzstd (not zstd -T or --long), or split -b 16M, zstd each piece and cat them")
	// ErrTooManyUnits means the input holds more frames than
	// Options.MaxUnits.
	ErrTooManyUnits = errors.New("zstdindex: too many zstd frames")
)
