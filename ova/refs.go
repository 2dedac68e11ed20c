package ova

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxDescriptorSize bounds how much of a descriptor is parsed. Real ones
// are tens of kilobytes; the bound keeps a hostile one from costing more
// than a bounded amount of memory and time.
const maxDescriptorSize = 16 << 20

// FileRef is one File element of a descriptor's References section: a file
// the package is made of.
type FileRef struct {
	ID          string
	Href        string
	Size        int64 // ovf:size as declared (often wrong); -1 if absent
	Compression string
	ChunkSize   int64 // 0 unless the file is split into chunks
}

// DiskRef is a Disk element of a descriptor's DiskSection.
type DiskRef struct {
	ID, FileRef, Format string
}

// Refs are what a descriptor says the package is made of.
type Refs struct {
	Files []FileRef
	Disks []DiskRef
}

// DiskFiles returns the File elements that DiskSection says are disks.
func (r Refs) DiskFiles() []FileRef {
	var out []FileRef
	for _, d := range r.Disks {
		for _, f := range r.Files {
			if f.ID == d.FileRef && d.FileRef != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// ParseFileRefs reads the References section of an OVF descriptor.
func ParseFileRefs(r io.Reader) ([]FileRef, error) {
	refs, err := ParseRefs(r)
	return refs.Files, err
}

// ParseRefs reads the References and DiskSection of an OVF descriptor.
// Elements are matched by local name, so every OVF version and namespace
// spelling works (OVF 0.9's generic Section elements included). The XML
// decoder never resolves external entities or reads a DTD.
func ParseRefs(r io.Reader) (Refs, error) {
	lr := &io.LimitedReader{R: r, N: maxDescriptorSize + 1}
	d := xml.NewDecoder(lr)
	d.Strict = false
	d.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		// Producers declare utf-16 on plain ASCII files (XenCenter); the
		// bytes are what counts, and the decoder rejects invalid UTF-8.
		return input, nil
	}
	var refs Refs
	var stack []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if lr.N <= 0 {
				return refs, fmt.Errorf("ova: descriptor larger than %d bytes", maxDescriptorSize)
			}
			return refs, fmt.Errorf("ova: descriptor is not valid XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > 64 {
				return refs, errors.New("ova: descriptor nested more than 64 elements deep")
			}
			stack = append(stack, t.Name.Local)
			parent := ""
			if len(stack) >= 2 {
				parent = stack[len(stack)-2]
			}
			switch {
			case t.Name.Local == "File" && parent == "References":
				refs.Files = append(refs.Files, fileRefFrom(t))
			case t.Name.Local == "Disk" && (parent == "DiskSection" || parent == "Section"):
				refs.Disks = append(refs.Disks, diskRefFrom(t))
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	return refs, nil
}

func diskRefFrom(t xml.StartElement) DiskRef {
	var d DiskRef
	for _, a := range t.Attr {
		switch a.Name.Local {
		case "diskId":
			d.ID = a.Value
		case "fileRef":
			d.FileRef = a.Value
		case "format":
			d.Format = a.Value
		}
	}
	return d
}

func fileRefFrom(t xml.StartElement) FileRef {
	f := FileRef{Size: -1}
	for _, a := range t.Attr {
		switch a.Name.Local {
		case "id":
			f.ID = a.Value
		case "href":
			f.Href = strings.TrimSpace(a.Value)
		case "size":
			if v, err := strconv.ParseInt(strings.TrimSpace(a.Value), 10, 64); err == nil && v >= 0 {
				f.Size = v
			}
		case "compression":
			f.Compression = a.Value
		case "chunkSize":
			if v, err := strconv.ParseInt(strings.TrimSpace(a.Value), 10, 64); err == nil && v > 0 {
				f.ChunkSize = v
			}
		}
	}
	return f
}

// LocalHref returns the package path an href names, or why it names none:
// an href must be a relative path inside the package. URLs, absolute paths
// and ".." are refused, as virt-v2v refuses them.
func LocalHref(href string) (string, error) {
	if i := strings.Index(href, ":"); i > 0 && !strings.ContainsAny(href[:i], "/.") {
		return "", fmt.Errorf("href %q is a URL, not a file of the package", href)
	}
	if strings.HasPrefix(href, "/") {
		return "", fmt.Errorf("href %q is an absolute path outside the package", href)
	}
	name, note, ok := cleanName(href)
	if !ok {
		return "", fmt.Errorf("href %q is refused: %s", href, note)
	}
	if name == "" {
		return "", fmt.Errorf("href %q names no file", href)
	}
	return name, nil
}

// ChunkName is the name of chunk i of a file split with ovf:chunkSize:
// the href, a dot and a zero-padded nine-digit index.
func ChunkName(href string, i int) string { return fmt.Sprintf("%s.%09d", href, i) }
