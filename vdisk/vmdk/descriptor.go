package vmdk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// maxDescriptor bounds the text read as a descriptor. Real descriptors are
// under 2 KiB, VirtualBox's extra ddb lines included.
const maxDescriptor = 64 << 10

// noParentCID is the parentCID of a disk without a parent.
const noParentCID = "ffffffff"

// descriptor holds what this package uses from a descriptor's text.
type descriptor struct {
	createType string
	cid        string // as stored; "" when absent
	parentCID  string // lower-cased; "" when absent
	parentHint string
	hasHint    bool
	extents    []extentLine
}

// extentLine is one "ACCESS SECTORS TYPE ["file" [OFFSET]]" line.
type extentLine struct {
	line      int // 1-based, for errors
	access    string
	sectors   uint64
	typ       string
	file      string
	hasFile   bool
	offset    uint64 // sectors
	hasOffset bool
}

// descriptorText cuts raw at its first NUL (embedded descriptors are
// padded with zeros) and strips a UTF-8 byte order mark.
func descriptorText(raw []byte) []byte {
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		raw = raw[:i]
	}
	return bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
}

// looksLikeDescriptor is Detect's cheap test for a text descriptor.
func looksLikeDescriptor(b []byte) bool {
	b = bytes.TrimLeft(descriptorText(b), " \t\r\n")
	const head = "# Disk DescriptorFile"
	return len(b) >= len(head) && strings.EqualFold(string(b[:len(head)]), head)
}

// parseDescriptor reads keys case-insensitively (the first occurrence of a
// key wins, as in qemu) and, with extents set, the extent lines. Comment
// lines, ddb entries and lines it does not know are skipped, which is how
// VirtualBox's and VMware's additions pass through.
func parseDescriptor(text []byte, name string, extents bool) (descriptor, error) {
	var d descriptor
	seen := map[string]bool{}
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		first, _, _ := strings.Cut(line, " ")
		first, _, _ = strings.Cut(first, "\t")
		switch strings.ToUpper(first) {
		case "RW", "RDONLY", "NOACCESS":
			if !extents {
				continue
			}
			e, err := parseExtentLine(line)
			if err != nil {
				return d, fmt.Errorf("vmdk: %s: descriptor line %d %q: %v: %w", name, i+1, clip(line), err, blockmap.ErrCorrupt)
			}
			e.line = i + 1
			d.extents = append(d.extents, e)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if seen[k] {
			continue
		}
		seen[k] = true
		v = unquote(strings.TrimSpace(v))
		switch k {
		case "createtype":
			d.createType = v
		case "cid":
			d.cid = v
		case "parentcid":
			d.parentCID = strings.ToLower(v)
		case "parentfilenamehint":
			d.parentHint, d.hasHint = v, v != ""
		}
	}
	return d, nil
}

// parseExtentLine splits an extent line into its fields. The file name is
// quoted and may contain spaces.
func parseExtentLine(line string) (extentLine, error) {
	var toks []string
	var quoted []bool
	for rest := line; ; {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return extentLine{}, fmt.Errorf("unterminated quote")
			}
			toks, quoted = append(toks, rest[1:1+end]), append(quoted, true)
			rest = rest[2+end:]
			continue
		}
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		toks, quoted = append(toks, rest[:end]), append(quoted, false)
		rest = rest[end:]
	}
	if len(toks) < 3 {
		return extentLine{}, fmt.Errorf("want access, size and type")
	}
	e := extentLine{access: strings.ToUpper(toks[0]), typ: strings.ToUpper(toks[2])}
	n, err := strconv.ParseUint(toks[1], 10, 64)
	if err != nil || quoted[1] {
		return e, fmt.Errorf("size %q is not a sector count", toks[1])
	}
	if n > maxCapacity {
		return e, fmt.Errorf("size of %d sectors is beyond %d", n, uint64(maxCapacity))
	}
	e.sectors = n
	if len(toks) > 3 {
		e.file, e.hasFile = toks[3], true
	}
	if len(toks) > 4 {
		o, err := strconv.ParseUint(toks[4], 10, 64)
		if err != nil || quoted[4] {
			return e, fmt.Errorf("offset %q is not a sector number", toks[4])
		}
		if o > maxCapacity {
			return e, fmt.Errorf("offset of %d sectors is beyond %d", o, uint64(maxCapacity))
		}
		e.offset, e.hasOffset = o, true
	}
	if len(toks) > 5 {
		return e, fmt.Errorf("unexpected %q after the offset", toks[5])
	}
	// The same shapes qemu accepts: FLAT needs an offset, VMFS and the
	// sparse kinds take none, ZERO names no file.
	switch e.typ {
	case "ZERO":
		if e.hasFile {
			return e, fmt.Errorf("a ZERO extent names no file")
		}
	case "FLAT":
		if !e.hasOffset {
			return e, fmt.Errorf("a FLAT extent needs an offset")
		}
	default:
		if !e.hasFile {
			return e, fmt.Errorf("no file name")
		}
		if e.hasOffset {
			return e, fmt.Errorf("a %s extent takes no offset", e.typ)
		}
	}
	return e, nil
}

// isDelta reports whether the descriptor names a parent: a parent file
// name, or a parentCID other than ffffffff (a disk with no parent).
func (d *descriptor) isDelta() bool {
	return d.hasHint || (d.parentCID != "" && d.parentCID != noParentCID)
}

// checkParent refuses delta disks unless the caller reads through them
// (Options.AllowParent): without their parent, their data is only part of
// a disk.
func (d *descriptor) checkParent(name string, opts Options) error {
	if !d.isDelta() || opts.AllowParent {
		return nil
	}
	parent := d.parentHint
	if !d.hasHint {
		parent = "CID " + d.parentCID
	}
	return fmt.Errorf("vmdk: %s is a delta disk; parent %s is not supported: %w", name, blockmap.Quote(parent), blockmap.ErrUnsupported)
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// clip shortens hostile text quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
