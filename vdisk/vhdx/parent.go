package vhdx

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// locatorVHDX is the only parent locator type [MS-VHDX] 2.6.2.6.3 defines.
var locatorVHDX = mustGUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")

// maxItemLength is the largest metadata item the specification allows.
const maxItemLength = 1 * mib

// pathKeys are the locator's paths, in the order the specification says
// an implementation evaluates them.
var pathKeys = []string{"relative_path", "volume_path", "absolute_win32_path"}

// locator is what a differencing disk's parent locator says.
type locator struct {
	linkage  guid  // parent_linkage: the parent's DataWriteGuid
	linkage2 *guid // parent_linkage2, when present: another accepted one
	names    []string
}

// readLocator parses the parent locator item loc of the metadata region md.
// The keys the specification requires (parent_linkage, and one path) must
// be there and parse; keys it does not define are ignored, as it allows.
func readLocator(v io.ReaderAt, md region, loc item, name string) (*locator, error) {
	if loc.length < 20 || loc.length > maxItemLength {
		return nil, corrupt(name, "parent locator of %d bytes (a header is 20, an item at most 1 MiB)", loc.length)
	}
	b := make([]byte, loc.length)
	if _, err := v.ReadAt(b, md.off+loc.off); err != nil {
		return nil, readFail(name, "the parent locator", md.off+loc.off, err)
	}
	if t := guid(b[0:16]); t != locatorVHDX {
		return nil, unsupported(name, "parent locator of type %v, not the VHDX type %v", t, locatorVHDX)
	}
	count := int64(binary.LittleEndian.Uint16(b[18:]))
	if 20+12*count > loc.length {
		return nil, corrupt(name, "parent locator lists %d entries, more than its %d bytes hold", count, loc.length)
	}
	kv := map[string]string{}
	for i := range count {
		e := b[20+12*i:]
		ko, vo := int64(binary.LittleEndian.Uint32(e[0:])), int64(binary.LittleEndian.Uint32(e[4:]))
		kl, vl := int64(binary.LittleEndian.Uint16(e[8:])), int64(binary.LittleEndian.Uint16(e[10:]))
		if ko+kl > loc.length || vo+vl > loc.length {
			return nil, corrupt(name, "parent locator entry %d (key %d bytes at %d, value %d bytes at %d) lies outside the %d-byte locator",
				i, kl, ko, vl, vo, loc.length)
		}
		k := utf16le(b[ko : ko+kl])
		if _, dup := kv[k]; dup {
			return nil, corrupt(name, "parent locator has the key %s twice", blockmap.Quote(k))
		}
		kv[k] = utf16le(b[vo : vo+vl])
	}

	l := &locator{}
	link, ok := kv["parent_linkage"]
	if !ok {
		return nil, corrupt(name, "parent locator has no parent_linkage")
	}
	var err error
	if l.linkage, err = parseGUID(link); err != nil {
		return nil, corrupt(name, "parent locator: parent_linkage: %v", err)
	}
	if link2, ok := kv["parent_linkage2"]; ok {
		g, err := parseGUID(link2)
		if err != nil {
			return nil, corrupt(name, "parent locator: parent_linkage2: %v", err)
		}
		l.linkage2 = &g
	}
	for _, k := range pathKeys {
		if p, ok := kv[k]; ok && p != "" {
			l.names = append(l.names, p)
		}
	}
	if len(l.names) == 0 {
		return nil, corrupt(name, "parent locator has none of relative_path, volume_path and absolute_win32_path")
	}
	return l, nil
}

// newParent turns the locator into the child's blockmap.Parent.
func (img *Image) newParent(l *locator) *blockmap.Parent {
	return &blockmap.Parent{
		Names: l.names,
		Check: func(p blockmap.Mapper) error { return img.checkParent(p, l) },
	}
}

// checkParent verifies that candidate p is the parent the child was
// written against: a VHDX whose header's DataWriteGuid is the child's
// parent_linkage or, when present, parent_linkage2 ([MS-VHDX] 2.6.2.6.3).
// A VHDX differencing disk's parent is always a VHDX.
func (img *Image) checkParent(p blockmap.Mapper, l *locator) error {
	pi, ok := p.(*Image)
	if !ok {
		what := fmt.Sprintf("%T", p)
		if f, ok := p.(interface{ Format() string }); ok {
			what = f.Format()
		}
		return corrupt(img.name, "a differencing VHDX's parent is a VHDX, and the candidate is a %s", what)
	}
	if pi.dataWrite == l.linkage || (l.linkage2 != nil && pi.dataWrite == *l.linkage2) {
		return nil
	}
	want := "parent_linkage {" + l.linkage.String() + "}"
	if l.linkage2 != nil {
		want += " and parent_linkage2 {" + l.linkage2.String() + "}"
	}
	return corrupt(img.name, "its %s, but the candidate %s has DataWriteGuid {%v}", want, blockmap.Quote(pi.name), pi.dataWrite)
}

// Parent returns what a differencing disk opened with Options.AllowParent
// says about its parent, and nil for a fixed or dynamic disk.
func (img *Image) Parent() *blockmap.Parent { return img.parent }

// DataWriteGUID returns the DataWriteGuid of the active header in its
// canonical text form (e.g. "83ED0EC3-24C8-49A6-A959-5E4BF1288BFB"): the
// identity a child records as parent_linkage, which its Parent.Check
// compares.
func (img *Image) DataWriteGUID() string { return img.dataWrite.String() }
