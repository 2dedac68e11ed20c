package ovf

import "io"

// SniffBytes is the most Sniff reads. Real descriptors begin their
// Envelope within the first few hundred bytes; a generator's banner
// comment or a licence in a comment can take a few kilobytes more.
const SniffBytes = 64 << 10

// Sniff decides from the start of r whether it is an OVF descriptor, the
// way Parse would read it: a byte order mark (UTF-8 or UTF-16), the XML
// declaration, comments, processing instructions, a document type
// declaration and blanks are skipped as encoding/xml tokens them, and the
// root element's local name must be Envelope, whatever its prefix or
// namespace. It reads at most SniffBytes of r, so a caller can sniff a
// multi-gigabyte archive cheaply, and stops at the root's start tag. It
// exists because recognising a descriptor by a prefix of its bytes refuses
// real ones: a comment before <Envelope>, or a long one after the XML
// declaration.
//
// The answers are:
//
//   - nil: an OVF descriptor, as far as its start shows. Whatever Parse
//     accepts Sniff calls a descriptor, provided the root's start tag
//     ends within SniffBytes; Parse may still refuse what Sniff accepts
//     (malformed further on, declaring entities, too large).
//   - an error wrapping ErrNotXML (and ErrNotOVF): not XML at all, its
//     first character after a byte order mark and blanks is not '<'; a
//     tar archive, a disk image, an empty file. Text: "ovf: not XML:
//     it begins with the byte 0x89, not '<'".
//   - any other error wrapping ErrNotOVF: XML, but not an OVF descriptor.
//     An *XMLError when it does not parse or its root is another element,
//     with the line and column: "ovf: not a valid OVF descriptor: line 3,
//     column 5: element <b> closed by </c>". When no root element begins
//     within SniffBytes: "ovf: not recognised as an OVF descriptor within
//     its first 65536 bytes: no root element begins there".
//
// An error of r itself is returned wrapped, as itself, and wraps no
// sentinel. Where Sniff answers with an error wrapping ErrNotOVF other than
// the SniffBytes one, Parse fails on the same input with the same text (or
// with ErrEntity, which Sniff does not look for).
func Sniff(r io.Reader) error {
	p := &parser{}
	doc, err := openDocument(r, SniffBytes, p)
	doc.sniff = true
	if err == nil {
		_, err = doc.prolog(p, false)
	}
	if err != nil {
		return doc.fail(err, defaultLimits)
	}
	return nil
}
