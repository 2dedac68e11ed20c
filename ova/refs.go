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

// ParseFileRefs reads the References section of an OVF descriptor. Elements
// are matched by local name, so every OVF version and namespace spelling
// works. The XML decoder never resolves external entities or reads a DTD.
func ParseFileRefs(r io.Reader) ([]FileRef, error) {
	lr := &io.LimitedReader{R: r, N: maxDescriptorSize + 1}
	d := xml.NewDecoder(lr)
	d.Strict = false
	d.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		// Producers declare utf-16 on plain ASCII files (XenCenter); the
		// bytes are what counts, and the decoder rejects invalid UTF-8.
		return input, nil
	}
	var refs []FileRef
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
			if t.Name.Local == "File" && len(stack) >= 2 && stack[len(stack)-2] == "References" {
				refs = append(refs, fileRefFrom(t))
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	return refs, nil
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
