package ovf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
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
	maxBytes:    16 << 20,
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
	rec := &recordingReader{r: r}
	lr := &io.LimitedReader{R: rec, N: lim.maxBytes + 1}
	src, err := sniffEncoding(lr, p)
	if err != nil {
		return nil, readError(lr, rec, lim, err)
	}
	d := xml.NewDecoder(src)
	d.Strict = true
	// Entity stays nil: only the five predefined entities and character
	// references are expanded, so no entity can read a file or the network
	// or grow the input.
	d.CharsetReader = p.charsetReader

	var (
		root     *node
		stack    []*node
		texts    [][]byte
		elements int
		attrs    int
	)
	for {
		tok, err := d.Token()
		if err != nil {
			// The decoder reports the end of input inside an element as a
			// syntax error, so a bare EOF means there was no element at all.
			if err == io.EOF && rec.err == nil && lr.N > 0 {
				return nil, fmt.Errorf("%w: no root element", ErrNotOVF)
			}
			return nil, readError(lr, rec, lim, err)
		}
		switch t := tok.(type) {
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
				if t.Name.Local != "Envelope" {
					return nil, fmt.Errorf("%w: root element is <%s>, not <Envelope>", ErrNotOVF, t.Name.Local)
				}
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
				checkTrailer(d, p)
				if lr.N <= 0 {
					return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.maxBytes)
				}
				return root, nil
			}
		case xml.CharData:
			if len(texts) > 0 {
				texts[len(texts)-1] = append(texts[len(texts)-1], t...)
			}
		case xml.Directive:
			if err := checkDirective(t, p); err != nil {
				return nil, err
			}
		}
	}
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

// readError classifies an error from reading the document: ErrTooLarge
// when the size bound cut the input short, the reader's own error when
// reading failed, and ErrNotOVF for everything the decoder rejects.
func readError(lr *io.LimitedReader, rec *recordingReader, lim limits, err error) error {
	var se *xml.SyntaxError
	switch {
	case lr.N <= 0:
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.maxBytes)
	case rec.err != nil:
		return fmt.Errorf("ovf: reading descriptor: %w", rec.err)
	case errors.As(err, &se):
		return fmt.Errorf("%w: line %d: %s", ErrNotOVF, se.Line, se.Msg)
	}
	return fmt.Errorf("%w: %s", ErrNotOVF, strings.TrimPrefix(err.Error(), "xml: "))
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
