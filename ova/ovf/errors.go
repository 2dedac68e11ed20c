package ovf

import "errors"

// Apart from the reader's own errors, which it returns wrapped, Parse fails
// only with an error wrapping one of these, so a caller can tell "this is not
// a descriptor" from "this descriptor is hostile" without matching message
// text.
var (
	// ErrNotOVF: the input is not well-formed XML, or its root element is
	// not an Envelope.
	ErrNotOVF = errors.New("ovf: not an OVF descriptor")
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
