package ova

import (
	"errors"
	"fmt"
)

var (
	// ErrFormat means the input is not a tar archive (or not an OVF
	// package folder), so nothing can be indexed.
	ErrFormat = errors.New("not a tar archive")
	// ErrTruncated is returned by reads that reach bytes a truncated
	// archive does not contain.
	ErrTruncated = errors.New("read past the end of a truncated member")
	// ErrChanged means the archive no longer holds bytes it held when it
	// was indexed (it shrank underneath the reader).
	ErrChanged = errors.New("archive changed since it was indexed")
)

// FormatError says why the input is not a tar archive. It matches
// ErrFormat with errors.Is.
type FormatError struct{ Reason string }

func (e *FormatError) Error() string        { return "ova: " + e.Reason }
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// Warning is something the index tolerated: the archive is still usable,
// but a careful user wants to know.
type Warning struct {
	Offset int64  // archive offset of the header concerned, or -1
	Name   string // member name as stored, if any
	Msg    string
}

func (w Warning) String() string {
	switch {
	case w.Offset >= 0 && w.Name != "":
		return fmt.Sprintf("%q (header at offset %d): %s", w.Name, w.Offset, w.Msg)
	case w.Offset >= 0:
		return fmt.Sprintf("header at offset %d: %s", w.Offset, w.Msg)
	case w.Name != "":
		return fmt.Sprintf("%q: %s", w.Name, w.Msg)
	}
	return w.Msg
}

var (
	// ErrNotZip means OpenZip was given something that is not a zip
	// archive: no end of central directory record in its last 64 KiB.
	ErrNotZip = errors.New("not a zip archive")
	// ErrZipCorrupt means a zip archive's directory cannot be trusted (it
	// points outside the file, or its records are damaged), or, from a
	// read or Member.Prepare, that an entry's data does not match the
	// CRC-32 and size its directory records.
	ErrZipCorrupt = errors.New("corrupt zip archive")
	// ErrZipUnsupported is returned by reads of a zip entry that is
	// encrypted or compressed with a method other than stored or deflate:
	// the entry is listed, with a Warning, but its bytes cannot be served.
	ErrZipUnsupported = errors.New("zip entry cannot be read")
)
