package vmdk

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// maxDiskSize bounds the extents of one disk added end to end.
const maxDiskSize = maxCapacity * sectorSize

type member struct {
	r    io.ReaderAt
	size int64
}

// openDescriptor builds a disk from a descriptor's extent lines. Extent
// files come only from opts.Resolve, and each distinct file is resolved
// and parsed once however many lines name it.
func openDescriptor(text []byte, opts Options, name string) (*Image, error) {
	d, err := parseDescriptor(text, name, true)
	if err != nil {
		return nil, err
	}
	if d.createType == "" {
		return nil, fmt.Errorf("vmdk: %s: not a VMDK: no sparse header magic, and no createType in a descriptor: %w", name, blockmap.ErrCorrupt)
	}
	if err := d.checkParent(name, opts); err != nil {
		return nil, err
	}
	switch strings.ToLower(d.createType) {
	case "fulldevice", "partitioneddevice", "vmfsraw", "vmfsrdm", "vmfsrdmp", "vmfspassthroughrawdevicemap":
		return nil, fmt.Errorf("vmdk: %s: createType %q cannot be served from an archive: %w", name, clip(d.createType), blockmap.ErrUnsupported)
	}
	if len(d.extents) == 0 {
		return nil, fmt.Errorf("vmdk: %s: descriptor (createType %q) lists no extents: %w", name, clip(d.createType), blockmap.ErrCorrupt)
	}

	im := &Image{name: name, cid: d.cid}
	if d.isDelta() {
		im.parent = d.parentRef(name)
	}
	files := map[string]member{}
	sparses := map[string]*sparse{}
	ses := map[string]*seSparse{}
	var pos int64
	for i, e := range d.extents {
		which := fmt.Sprintf("extent %d (line %d)", i+1, e.line)
		if e.access == "NOACCESS" {
			return nil, fmt.Errorf("vmdk: %s: %s is NOACCESS: %w", name, which, blockmap.ErrUnsupported)
		}
		if e.sectors == 0 {
			im.warn("%s has no sectors and is skipped", which)
			continue
		}
		x := extent{start: pos}
		length := int64(e.sectors) * sectorSize
		switch e.typ {
		case "ZERO":
			x.kind = extZero
		case "FLAT", "VMFS":
			m, err := im.resolve(opts, e, which, files)
			if err != nil {
				return nil, err
			}
			x.kind, x.src, x.phys = extFlat, m.r, int64(e.offset)*sectorSize
			if m.size < x.phys+length {
				im.warn("%s: %q holds %d bytes, the extent needs %d from offset %d; the rest reads as zeros",
					which, e.file, m.size, length, x.phys)
			}
		case "SPARSE", "VMFSSPARSE":
			sp, err := im.openExtent(opts, e, which, files, sparses)
			if err != nil {
				return nil, err
			}
			if sp.size != length {
				// qemu sizes a sparse extent by its own header.
				im.warn("%s: descriptor gives %d sectors, the extent's header %d; the header wins, as in qemu",
					which, e.sectors, sp.size/sectorSize)
			}
			length = sp.size
			if length == 0 {
				continue
			}
			x.kind, x.sp, x.dec = extSparse, sp, &grainDecoder{sp: sp, base: pos}
		case "SESPARSE":
			se, err := im.openSESparseExtent(opts, e, which, files, ses)
			if err != nil {
				return nil, err
			}
			if se.size != length {
				im.warn("%s: descriptor gives %d sectors, the extent's header %d; the header wins, as in qemu",
					which, e.sectors, se.size/sectorSize)
			}
			length = se.size
			if length == 0 {
				continue
			}
			x.kind, x.se = extSESparse, se
		case "VMFSRDM", "VMFSRAW":
			return nil, fmt.Errorf("vmdk: %s: %s has type %s: %w", name, which, e.typ, blockmap.ErrUnsupported)
		default:
			return nil, fmt.Errorf("vmdk: %s: %s has unknown type %q: %w", name, which, clip(e.typ), blockmap.ErrUnsupported)
		}
		if length > maxDiskSize-pos {
			return nil, fmt.Errorf("vmdk: %s: extents add up to more than %d bytes at %s: %w", name, int64(maxDiskSize), which, blockmap.ErrCorrupt)
		}
		x.end = pos + length
		pos = x.end
		im.exts = append(im.exts, x)
	}
	if len(im.exts) == 0 {
		return nil, fmt.Errorf("vmdk: %s: no extent holds any sectors: %w", name, blockmap.ErrCorrupt)
	}
	im.size = pos
	plural := "s"
	if len(d.extents) == 1 {
		plural = ""
	}
	im.format = fmt.Sprintf("vmdk %s (%d extent%s)", printable(d.createType), len(d.extents), plural)
	return im, nil
}

// resolve finds an extent's file through opts.Resolve after refusing
// names that could reach outside the archive folder.
func (im *Image) resolve(opts Options, e extentLine, which string, files map[string]member) (member, error) {
	if m, ok := files[e.file]; ok {
		return m, nil
	}
	if why := badExtentName(e.file); why != "" {
		return member{}, fmt.Errorf("vmdk: %s: %s names %q, which %s; refusing it: %w", im.name, which, clip(e.file), why, blockmap.ErrUnsupported)
	}
	if opts.Resolve == nil {
		return member{}, fmt.Errorf("vmdk: %s: %s lives in %q and no resolver was given: %w", im.name, which, e.file, blockmap.ErrUnsupported)
	}
	r, n, err := opts.Resolve(e.file)
	if err != nil {
		return member{}, fmt.Errorf("vmdk: %s: %s: cannot open %q: %w: %w", im.name, which, e.file, err, blockmap.ErrUnsupported)
	}
	if r == nil || n < 0 {
		return member{}, fmt.Errorf("vmdk: %s: %s: resolver gave no reader for %q: %w", im.name, which, e.file, blockmap.ErrUnsupported)
	}
	m := member{r, n}
	files[e.file] = m
	return m, nil
}

// openExtent opens a SPARSE or VMFSSPARSE extent's file as a sparse
// extent. Its embedded descriptor, if any, is ignored, as in qemu.
func (im *Image) openExtent(opts Options, e extentLine, which string, files map[string]member, sparses map[string]*sparse) (*sparse, error) {
	if sp, ok := sparses[e.file]; ok {
		return sp, nil
	}
	m, err := im.resolve(opts, e, which, files)
	if err != nil {
		return nil, err
	}
	xname := fmt.Sprintf("%s extent %q", im.name, e.file)
	if m.size < 4 {
		return nil, fmt.Errorf("vmdk: %s: %d bytes is too small for a sparse extent: %w", xname, m.size, blockmap.ErrCorrupt)
	}
	var first [sectorSize]byte
	if err := readPadded(m.r, m.size, first[:], 0); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading the header: %w", xname, err)
	}
	switch {
	case bytes.HasPrefix(first[:], magicKDMV), bytes.HasPrefix(first[:], magicCOWD):
	case looksLikeDescriptor(first[:]):
		return nil, fmt.Errorf("vmdk: %s: the extent is itself a descriptor; nested descriptors are not followed: %w", xname, blockmap.ErrUnsupported)
	default:
		return nil, fmt.Errorf("vmdk: %s: %s extent has no sparse header magic (%q): %w", xname, e.typ, first[:4], blockmap.ErrCorrupt)
	}
	h, _, err := readSparseHeader(m.r, m.size, first[:], xname)
	if err != nil {
		return nil, err
	}
	if !h.cowd && h.capacity == 0 && h.descOffset != 0 {
		return nil, fmt.Errorf("vmdk: %s: the extent is a descriptor container (capacity 0); nested descriptors are not followed: %w", xname, blockmap.ErrUnsupported)
	}
	sp, err := newSparse(m.r, m.size, h, xname)
	if err != nil {
		return nil, err
	}
	im.sparseWarnings(h, e.file)
	sparses[e.file] = sp
	return sp, nil
}

// badExtentName says why an extent name is refused, or "" if it is not.
// Names are relative to the descriptor's folder inside the archive, so an
// absolute path (Unix, UNC or drive-letter) or a ".." element is hostile.
func badExtentName(n string) string {
	switch {
	case n == "":
		return "is empty"
	case strings.ContainsRune(n, 0):
		return "contains a NUL byte"
	case n[0] == '/' || n[0] == '\\':
		return "is absolute"
	case len(n) >= 2 && n[1] == ':' && (n[0]|0x20 >= 'a' && n[0]|0x20 <= 'z'):
		return "starts with a drive letter"
	}
	for _, el := range strings.FieldsFunc(n, func(r rune) bool { return r == '/' || r == '\\' }) {
		if el == ".." {
			return `climbs out with ".."`
		}
	}
	return ""
}

// printable returns s for a format string, quoted if it holds anything
// other than the letters, digits and dashes createTypes are made of.
func printable(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Sprintf("%q", clip(s))
		}
	}
	return clip(s)
}
