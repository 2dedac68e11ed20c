package ovf

import (
	"errors"
	"fmt"
)

// Apart from the reader's own errors, which it returns wrapped, Parse fails
// only with an error wrapping one of these, so a caller can tell "this is not
// a descriptor" from "this descriptor is hostile" without matching message
// text.
var (
	// ErrNotOVF: the input is not an OVF descriptor: not XML at all
	// (then the error also wraps ErrNotXML), XML that does not parse, or
	// XML whose root element is not an Envelope (then it is an *XMLError,
	// which says where).
	ErrNotOVF = errors.New("ovf: not an OVF descriptor")
	// ErrNotXML: the input does not begin like XML (after a byte order
	// mark and blanks, its first character is not '<'): a tar archive, a
	// disk image, a manifest, an empty file. An error wrapping it also
	// wraps ErrNotOVF.
	ErrNotXML = errors.New("ovf: not XML")
	// ErrTooLarge: the input exceeds the size, element or attribute bound.
	ErrTooLarge = errors.New("ovf: descriptor too large")
	// ErrTooDeep: elements are nested deeper than any descriptor needs.
	ErrTooDeep = errors.New("ovf: descriptor nested too deeply")
	// ErrEntity: the document type declaration declares entities. No OVF
	// producer writes one; it is how XXE and entity-expansion attacks
	// start, so it is refused as soon as it is seen, before any entity
	// is used.
	ErrEntity = errors.New("ovf: descriptor declares XML entities")
)

// XMLError is why input that begins like XML is not an OVF descriptor, and
// where: the XML does not parse (Line and Column are where the parser
// stopped, just past the last character it read, which is at or just after
// the fault), or its root element is not an Envelope (they are where the
// root begins). Users fix descriptors in an editor, so the position is what
// makes the message useful. It wraps ErrNotOVF.
type XMLError struct {
	// Line and Column are 1-based. Column counts bytes, as encoding/xml
	// does, of the text as read: after a byte order mark, and in UTF-8
	// for input transcoded from UTF-16 or ISO-8859-1.
	Line, Column int
	Msg          string
}

func (e *XMLError) Error() string {
	return fmt.Sprintf("ovf: not a valid OVF descriptor: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

func (e *XMLError) Unwrap() error { return ErrNotOVF }

// notXMLError says how input that is not XML begins.
type notXMLError struct{ reason string }

func (e *notXMLError) Error() string { return "ovf: not XML: " + e.reason }

func (e *notXMLError) Unwrap() []error { return []error{ErrNotXML, ErrNotOVF} }

// notRecognisedError is Sniff's answer when no root element begins within
// SniffBytes: whatever the rest holds, no producer writes that much before
// its Envelope.
type notRecognisedError struct{}

func (notRecognisedError) Error() string {
	return fmt.Sprintf("ovf: not recognised as an OVF descriptor within its first %d bytes: no root element begins there", SniffBytes)
}

func (notRecognisedError) Unwrap() error { return ErrNotOVF }

var errNotRecognised error = notRecognisedError{}
