package gzindex

import "errors"

// Sentinel errors. Returned errors wrap one of these with the detail and
// the compressed offset concerned, so callers classify them with errors.Is.
var (
	// ErrNotGzip means the stream does not start with a gzip member.
	ErrNotGzip = errors.New("gzindex: not a gzip stream")
	// ErrHeader means a gzip member header is malformed: an unknown
	// compression method, reserved flags, or a header CRC mismatch.
	ErrHeader = errors.New("gzindex: invalid gzip member header")
	// ErrCorrupt means the deflate data inside a member is invalid.
	ErrCorrupt = errors.New("gzindex: corrupt deflate data")
	// ErrChecksum means a member's CRC-32 or ISIZE trailer does not match
	// the data it follows, or, for a raw deflate stream, the data does not
	// match the CRC-32 and size its container records (Options.Raw).
	ErrChecksum = errors.New("gzindex: checksum or size does not match the data")
	// ErrTruncated means the stream ends inside a member.
	ErrTruncated = errors.New("gzindex: truncated gzip stream")
	// ErrTrailingData means bytes other than zero padding follow the last
	// member, or that a raw deflate stream's data ends before the stream.
	ErrTrailingData = errors.New("gzindex: data after the last gzip member")
	// ErrIndex means a persisted index is damaged, of an unknown version,
	// or not an index at all.
	ErrIndex = errors.New("gzindex: damaged or foreign index encoding")
)
