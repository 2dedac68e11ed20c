package importers

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/ovfmount/ovfmount/ova/ovf"
)

// envelope1 is the OVF 1.x envelope namespace, the only one virt-v2v and
// Proxmox look for.
const envelope1 = "http://schemas.dmtf.org/ovf/envelope/1"

// envelope2 is OVF 2.x's; envelope09 is VMware's pre-standard OVF 0.9.
const (
	envelope2  = "http://schemas.dmtf.org/ovf/envelope/2"
	envelope09 = "http://www.vmware.com/schema/ovf/1/envelope"
)

// descriptor checks that there is a descriptor, that it parses, and what
// its version and hardware say.
func (c *checker) descriptor() {
	d := c.p.Descriptor
	if d == nil {
		c.add(breach{rule: "descriptor-missing", subject: path.Base(c.p.Name), message: "the package has no .ovf descriptor",
			fix: "add the OVF descriptor as the first member of the OVA"})
		return
	}
	if d.Env == nil {
		why := "it could not be parsed"
		if d.Err != nil {
			why = d.Err.Error()
		}
		c.add(breach{rule: "xml-invalid", subject: d.Member.Name, message: "the descriptor is not a readable OVF envelope: " + why,
			fix: "fix the XML (xmllint --noout " + d.Member.Name + " shows where) and update its manifest line"})
		return
	}
	c.prefixes()
	c.version()
	c.hardware()
}

// maxPrefixScan bounds the descriptor bytes the prefix check reads, as
// the descriptor's parser bounds them.
const maxPrefixScan = ovf.MaxSize

// prefixes reports element and attribute prefixes that no xmlns
// declaration in scope binds. Go's decoder, like several importers'
// parsers, would otherwise silently take such a prefix as a namespace of
// its own, and a strict namespace-aware parser refuses the document.
func (c *checker) prefixes() {
	m := c.p.Descriptor.Member
	if m.Size > maxPrefixScan {
		return // the descriptor's parser refuses it too, and says so
	}
	buf := make([]byte, m.Size)
	if _, err := m.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return // unreadable bytes: the archive's warnings say why
	}
	undefined, ok := undefinedPrefixes(buf)
	if !ok {
		return
	}
	for _, u := range undefined {
		c.add(breach{rule: "xml-undefined-prefix", subject: m.Name,
			message: fmt.Sprintf("the prefix %q of <%s> is not declared (line %d)", u.prefix, u.name, u.line),
			fix:     fmt.Sprintf("declare it on the Envelope (xmlns:%s=\"...\") or remove the prefix", u.prefix)})
	}
}

type undefinedPrefix struct {
	prefix, name string
	line         int
}

// maxUndefinedReported bounds the report of a descriptor full of them.
const maxUndefinedReported = 10

// undefinedPrefixes scans the document's raw tokens, keeping the xmlns
// declarations in scope, and lists each undeclared prefix once. It
// reports false when the document cannot be tokenised as UTF-8 XML (the
// descriptor's parser, which converts other encodings, decides then).
func undefinedPrefixes(doc []byte) ([]undefinedPrefix, bool) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	dec.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		if l := strings.ToLower(label); l == "utf-8" || l == "us-ascii" || l == "ascii" {
			return r, nil
		}
		return nil, fmt.Errorf("charset %s", label)
	}
	var scopes [][]string // the prefixes each open element declares
	bound := map[string]int{"xml": 1, "xmlns": 1}
	seen := map[string]bool{}
	var out []undefinedPrefix
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			return out, true
		}
		if err != nil {
			return nil, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var decl []string
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" {
					decl = append(decl, a.Name.Local)
					bound[a.Name.Local]++
				}
			}
			scopes = append(scopes, decl)
			check := func(prefix, name string) {
				if prefix == "" || bound[prefix] > 0 || seen[prefix] || len(out) >= maxUndefinedReported {
					return
				}
				seen[prefix] = true
				line, _ := dec.InputPos()
				out = append(out, undefinedPrefix{prefix: prefix, name: name, line: line})
			}
			check(t.Name.Space, t.Name.Space+":"+t.Name.Local)
			for _, a := range t.Attr {
				if a.Name.Space != "xmlns" {
					check(a.Name.Space, t.Name.Space+":"+t.Name.Local+" "+a.Name.Space+":"+a.Name.Local)
				}
			}
		case xml.EndElement:
			if n := len(scopes); n > 0 {
				for _, p := range scopes[n-1] {
					bound[p]--
				}
				scopes = scopes[:n-1]
			}
		}
	}
}

// version checks the envelope namespace: virt-v2v and Proxmox read only
// OVF 1.x's.
func (c *checker) version() {
	env := c.p.Descriptor.Env
	name := c.p.Descriptor.Member.Name
	if env.Namespace == envelope1 {
		return
	}
	v := env.Version
	if v == "" {
		v = "unknown"
	}
	b := breach{rule: "ovf-version", subject: name,
		message: fmt.Sprintf("the descriptor is OVF %s (namespace %s), not OVF 1.x", v, env.Namespace),
		fix:     "re-export the appliance as OVF 1.0 (VBoxManage export --ovf10, or the producer's OVF 1.0 option)"}
	switch {
	case env.Namespace == envelope2:
		b.only = []Target{VirtV2V, OVirt, Proxmox} // 2.x is the standard's own; only 1.x-only importers object
	case env.Namespace != envelope09:
		b.sev = Fail // a namespace DSP0243 does not define: no importer knows it
		b.message = fmt.Sprintf("the envelope namespace %s is not one DSP0243 defines (envelope/1 or envelope/2)", env.Namespace)
		b.fix = "use the envelope/1 namespace, http://schemas.dmtf.org/ovf/envelope/1"
	}
	c.add(b)
}
