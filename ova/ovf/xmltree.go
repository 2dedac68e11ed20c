package ovf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// limits bound what one descriptor may cost. Real descriptors are tens of
// kilobytes with a few thousand elements; the bounds sit far above that and
// far below what would hurt the process. The size bound is the one the ova
// package applies when it reads a descriptor out of an archive, so the two
// agree on what a descriptor may be.
type limits struct {
	maxBytes    int64 // raw input bytes
	maxDepth    int   // element nesting
	maxElements int   // elements in the whole document
	maxAttrs    int   // attributes in the whole document
}

var defaultLimits = limits{
	maxBytes:    MaxSize,
	maxDepth:    128,
	maxElements: 100_000,
	maxAttrs:    500_000,
}

// node is one element of the descriptor. The whole descriptor is read into
// a tree first because OVF puts related facts far apart (an Item names a
// disk declared sections earlier, a capacity names a property declared
// later), and the limits above keep the tree small.
type node struct {
	name  xml.Name
	kind  string // local name, or the xsi:type of an OVF 0.9 Section/Content, without "_Type"
	attrs []xml.Attr
	text  string
	kids  []*node
	// vendor marks elements in a vendor namespace (vmw:, vbox:, ovirt:,
	// xenovf:, vcloud:). They are never taken for OVF elements, even where
	// their local name matches one (vcloud:Configuration is not a
	// deployment option).
	vendor bool
}

const xsiNamespace = "http://www.w3.org/2001/XMLSchema-instance"

// vendorNamespaces are the extension namespaces of the producers we know.
// A prefix ends with "/" or is matched exactly.
var vendorNamespaces = []string{
	"http://www.vmware.com/schema/ovf",
	"http://www.vmware.com/vcloud/",
	"http://www.virtualbox.org/",
	"http://schemas.citrix.com/",
	"http://www.ovirt.org/",
	// Prefixes left unbound by a sloppy producer arrive as the prefix.
	"vmw", "vbox", "ovirt", "xenovf", "vcloud",
}

func isVendorNamespace(space string) bool {
	for _, v := range vendorNamespaces {
		if space == v || (strings.HasSuffix(v, "/") && strings.HasPrefix(space, v)) {
			return true
		}
	}
	return false
}

// isOVFNamespace reports whether space is an OVF envelope namespace of any
// version, or the "ovf" prefix left unbound.
func isOVFNamespace(space string) bool {
	space = strings.TrimRight(space, "/")
	return space == "ovf" || space == ovf09Namespace || strings.HasPrefix(space, dmtfNamespacePrefix)
}

// readTree reads the document element and everything in it, enforcing lim.
// Only the root element is read; what follows it is reported, not parsed.
func readTree(r io.Reader, lim limits, p *parser) (*node, error) {
	doc, err := openDocument(r, lim.maxBytes+1, p)
	if err != nil {
		return nil, doc.fail(err, lim)
	}
	t, err := doc.prolog(p, true)
	if err != nil {
		return nil, doc.fail(err, lim)
	}
	var (
		root     *node
		stack    []*node
		texts    [][]byte
		elements int
		attrs    int
	)
	for {
		switch t := t.(type) {
		case xml.StartElement:
			elements++
			attrs += len(t.Attr)
			if elements > lim.maxElements {
				return nil, fmt.Errorf("%w: more than %d elements", ErrTooLarge, lim.maxElements)
			}
			if attrs > lim.maxAttrs {
				return nil, fmt.Errorf("%w: more than %d attributes", ErrTooLarge, lim.maxAttrs)
			}
			if len(stack) >= lim.maxDepth {
				return nil, fmt.Errorf("%w: elements nested more than %d deep", ErrTooDeep, lim.maxDepth)
			}
			n := &node{name: t.Name, kind: t.Name.Local, attrs: t.Attr, vendor: isVendorNamespace(t.Name.Space)}
			if k := xsiType(t.Attr); k != "" && (t.Name.Local == "Section" || t.Name.Local == "Content") {
				n.kind = k
			}
			if root == nil {
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.kids = append(parent.kids, n)
			}
			stack = append(stack, n)
			texts = append(texts, nil)
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.text = string(bytes.TrimSpace(texts[len(texts)-1]))
			stack, texts = stack[:len(stack)-1], texts[:len(texts)-1]
			if len(stack) == 0 {
				checkTrailer(doc.d, p)
				if doc.lr.N <= 0 {
					return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.maxBytes)
				}
				return root, nil
			}
		case xml.CharData:
			texts[len(texts)-1] = append(texts[len(texts)-1], t...)
		case xml.Directive:
			if err := checkDirective(t, p); err != nil {
				return nil, err
			}
		}
		if t, err = doc.d.Token(); err != nil {
			return nil, doc.fail(err, lim)
		}
	}
}

// document is an XML document being read, with what it takes to tell why
// reading it failed.
type document struct {
	d     *xml.Decoder
	lr    *io.LimitedReader
	rec   *recordingReader
	first *firstByteReader
	// sniff marks a document read by Sniff: running into the byte bound
	// then means "not recognised", not "too large".
	sniff bool
}

// openDocument sets up a decoder for at most maxBytes of r. It never
// returns a nil document, so that its error can go through fail.
func openDocument(r io.Reader, maxBytes int64, p *parser) (*document, error) {
	rec := &recordingReader{r: r}
	doc := &document{rec: rec, lr: &io.LimitedReader{R: rec, N: maxBytes}}
	src, err := sniffEncoding(doc.lr, p)
	if err != nil {
		return doc, err
	}
	doc.first = &firstByteReader{r: src}
	doc.d = xml.NewDecoder(doc.first)
	doc.d.Strict = true
	// Entity stays nil: only the five predefined entities and character
	// references are expanded, so no entity can read a file or the network
	// or grow the input.
	doc.d.CharsetReader = p.charsetReader
	return doc, nil
}

// prolog reads what comes before the root element, as encoding/xml tokens
// it (the XML declaration, comments, processing instructions, a document
// type declaration and blanks), and returns the root's start tag. A root
// other than Envelope, in whatever namespace, is refused here, as is text
// before the root, which XML does not allow and encoding/xml lets through.
// checkDirectives is false for Sniff, which only recognises a descriptor
// and leaves refusing entities to Parse.
func (doc *document) prolog(p *parser, checkDirectives bool) (xml.Token, error) {
	for {
		line, col := doc.d.InputPos()
		tok, err := doc.d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "Envelope" {
				return nil, &XMLError{Line: line, Column: col, Msg: fmt.Sprintf("root element is <%s>, not <Envelope>", t.Name.Local)}
			}
			return t, nil
		case xml.CharData:
			// Input that begins with text never gets here: firstByteReader
			// stops it as not XML.
			if i := bytes.IndexFunc(t, func(r rune) bool { return !isXMLSpace(r) }); i >= 0 {
				line, col = advance(line, col, t[:i])
				return nil, &XMLError{Line: line, Column: col, Msg: "text before the root element"}
			}
		case xml.Directive:
			if checkDirectives {
				if err := checkDirective(t, p); err != nil {
					return nil, err
				}
			}
		}
	}
}

func isXMLSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r'
}

// advance moves a line and column over text as encoding/xml counts them.
func advance(line, col int, text []byte) (int, int) {
	for _, c := range text {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// firstByteReader notes the first byte that is not an XML blank, so that
// input that does not even begin like XML (a tar header, a disk image,
// text) can be told from XML that does not parse.
type firstByteReader struct {
	r     io.Reader
	first byte
	seen  bool // a non-blank byte was read
	any   bool // any byte was read
}

// Read stops at the first byte that is not a blank if it is not '<': such
// input fails anyway, and a disk image need not be read as far as the
// bound before saying so.
func (f *firstByteReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 {
		f.any = true
	}
	if !f.seen {
		for _, c := range b[:n] {
			if !isXMLSpace(rune(c)) {
				f.first, f.seen = c, true
				break
			}
		}
		if f.seen && f.first != '<' {
			return 0, f.notXML()
		}
	}
	return n, err
}

// isMarkup reports whether the input begins, after blanks, with '<'.
func (f *firstByteReader) isMarkup() bool {
	return f.seen && f.first == '<'
}

func (f *firstByteReader) notXML() error {
	switch {
	case !f.any:
		return &notXMLError{"empty"}
	case !f.seen:
		return &notXMLError{"only blanks"}
	case f.first < 0x80 && strconv.IsPrint(rune(f.first)):
		return &notXMLError{fmt.Sprintf("it begins with %q, not '<'", rune(f.first))}
	}
	return &notXMLError{fmt.Sprintf("it begins with the byte 0x%02x, not '<'", f.first)}
}

// recordingReader remembers the error of the caller's reader, so that a
// failing disk is not reported as a malformed descriptor.
type recordingReader struct {
	r   io.Reader
	err error
}

func (rr *recordingReader) Read(b []byte) (int, error) {
	n, err := rr.r.Read(b)
	if err != nil && err != io.EOF {
		rr.err = err
	}
	return n, err
}

// fail classifies an error from reading the document: the reader's own
// error when reading failed, ErrTooLarge when the size bound cut the input
// short (for Sniff: not recognised within SniffBytes), ErrNotXML for input
// that does not begin with markup, and an XMLError saying where for
// everything else the decoder rejects. Errors already classified pass
// through.
func (doc *document) fail(err error, lim limits) error {
	var (
		xe  *XMLError
		nx  *notXMLError
		se  *xml.SyntaxError
		msg string
	)
	switch {
	case errors.As(err, &xe), errors.As(err, &nx), errors.Is(err, ErrEntity):
		return err
	case doc.rec.err != nil:
		return fmt.Errorf("ovf: reading descriptor: %w", doc.rec.err)
	case doc.lr.N <= 0 && doc.sniff:
		return errNotRecognised
	case doc.lr.N <= 0:
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.maxBytes)
	case doc.d == nil:
		return &XMLError{Line: 1, Column: 1, Msg: err.Error()}
	case !doc.first.isMarkup():
		return doc.first.notXML()
	case err == io.EOF:
		msg = "no root element"
	case errors.As(err, &se):
		msg = se.Msg
	default:
		msg = strings.TrimPrefix(err.Error(), "xml: ")
	}
	// Where the decoder stopped: just past the last byte it read, which
	// is at or just after the fault. When the decoder has put back a
	// newline it counts column 0; just past that newline is the start of
	// the next line.
	line, col := doc.d.InputPos()
	if col < 1 {
		line, col = line+1, 1
	}
	return &XMLError{Line: line, Column: col, Msg: msg}
}

// checkDirective refuses a document type declaration that declares
// entities, and reports any other as ignored.
func checkDirective(t xml.Directive, p *parser) error {
	upper := bytes.ToUpper(t)
	if bytes.Contains(upper, []byte("<!ENTITY")) || bytes.HasPrefix(upper, []byte("ENTITY")) {
		return fmt.Errorf("%w (refused: no OVF descriptor needs them, and they are how XXE and entity-expansion attacks work)", ErrEntity)
	}
	if bytes.HasPrefix(upper, []byte("DOCTYPE")) {
		p.warnf("document type declaration ignored")
	}
	return nil
}

// checkTrailer reads one token past the root element to report content a
// strict parser would reject; it never reads the rest.
func checkTrailer(d *xml.Decoder, p *parser) {
	for {
		tok, err := d.Token()
		if err != nil {
			if err != io.EOF {
				p.warnf("ignored what follows </Envelope>: %v", err)
			}
			return
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue
			}
		case xml.Comment, xml.ProcInst:
			continue
		}
		p.warnf("ignored content after </Envelope>")
		return
	}
}

// xsiType returns the xsi:type of an OVF 0.9 Section or Content element
// without prefix and "_Type" suffix: "DiskSection", "VirtualSystem", ...
func xsiType(attrs []xml.Attr) string {
	for _, a := range attrs {
		if a.Name.Local == "type" && (a.Name.Space == xsiNamespace || a.Name.Space == "xsi") {
			v := strings.TrimSpace(a.Value)
			if i := strings.LastIndexByte(v, ':'); i >= 0 {
				v = v[i+1:]
			}
			return strings.TrimSuffix(v, "_Type")
		}
	}
	return ""
}

// attr returns the value of the attribute with this local name, preferring
// one in an OVF namespace or none (ovf:id over xenovf:id), and never a
// vendor's or xsi's.
func (n *node) attr(local string) string {
	v, _ := n.lookupAttr(local)
	return v
}

func (n *node) lookupAttr(local string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == local && (a.Name.Space == "" || isOVFNamespace(a.Name.Space)) {
			return strings.TrimSpace(a.Value), true
		}
	}
	for _, a := range n.attrs {
		if a.Name.Local == local && a.Name.Space != xsiNamespace && a.Name.Space != "xsi" && !isVendorNamespace(a.Name.Space) {
			return strings.TrimSpace(a.Value), true
		}
	}
	return "", false
}

// vendorAttr returns an extension attribute such as vmw:osType, whatever
// namespace it is in.
func (n *node) vendorAttr(local string) string {
	for _, a := range n.attrs {
		if a.Name.Local == local {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// children returns the OVF child elements of this kind.
func (n *node) children(kind string) []*node {
	var out []*node
	for _, k := range n.kids {
		if !k.vendor && k.kind == kind {
			out = append(out, k)
		}
	}
	return out
}

// child returns the first OVF child element of this kind, or nil.
func (n *node) child(kind string) *node {
	for _, k := range n.kids {
		if !k.vendor && k.kind == kind {
			return k
		}
	}
	return nil
}

// childText is the text of the first OVF child of this kind.
func (n *node) childText(kind string) string {
	if c := n.child(kind); c != nil {
		return c.text
	}
	return ""
}

// field returns the text of the first non-vendor child whose local name
// matches case-insensitively: rasd:InstanceID is rasd:InstanceId in 0.9.
func (n *node) field(local string) string {
	for _, k := range n.kids {
		if !k.vendor && strings.EqualFold(k.name.Local, local) {
			return k.text
		}
	}
	return ""
}

// fields returns the texts of every such child (HostResource and
// Connection may repeat).
func (n *node) fields(local string) []string {
	var out []string
	for _, k := range n.kids {
		if !k.vendor && strings.EqualFold(k.name.Local, local) {
			out = append(out, k.text)
		}
	}
	return out
}
