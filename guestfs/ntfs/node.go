package ntfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// maxAttrList is the largest $ATTRIBUTE_LIST read: Windows keeps them
// under 256 KiB.
const maxAttrList = 256 << 10

// Namespaces of a $FILE_NAME.
const (
	nsPOSIX    = 0
	nsWin32    = 1
	nsDOS      = 2
	nsWin32DOS = 3
)

// stdInfo is what $STANDARD_INFORMATION holds that stat shows.
type stdInfo struct {
	created, modified, mftChanged, accessed uint64 // 100 ns since 1601
	attrs                                   uint32 // FILE_ATTRIBUTE_*
}

// fileName is one $FILE_NAME of a file: each is a name in a directory
// (hard links are several), except DOS names, 8.3 aliases of another.
type fileName struct {
	parent uint64
	ns     uint8
	name   string
}

type namedStream struct {
	name string
	s    *stream
}

// node is a file as its base MFT record and extension records describe
// it, assembled once and kept in the cache; it is never modified after.
type node struct {
	num        uint64
	flags      uint16 // record header flags
	linkCount  uint16
	si         stdInfo
	hasSI      bool
	names      []fileName
	data       *stream // the unnamed $DATA, or nil
	named      []namedStream
	indexRoot  []byte  // the $I30 $INDEX_ROOT value, or nil
	indexAlloc *stream // the $I30 $INDEX_ALLOCATION, or nil
	reparse    []byte  // the $REPARSE_POINT value, or nil
	ea         []byte  // the $EA value, or nil
	volName    string  // $Volume's label
	volFlags   uint16  // $Volume's flags
	cost       int
}

func (n *node) isDir() bool { return n.flags&recDir != 0 || n.indexRoot != nil }

// readRecord reads and parses MFT record num.
func (fs *FS) readRecord(num uint64) (*record, error) {
	if num >= fs.mftRecords {
		return nil, fmt.Errorf("ntfs: MFT record %d past the %d the $MFT holds: %w", num, fs.mftRecords, guestfs.ErrNotExist)
	}
	b := make([]byte, fs.g.recordSize)
	if err := fs.readStreamFull(fs.mft, b, int64(num)*fs.g.recordSize); err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", num, err)
	}
	return parseRecord(b, num)
}

// node returns file num, from the cache or assembled from its records.
func (fs *FS) node(num uint64) (*node, error) {
	if n, ok := fs.nodes.Get(num); ok {
		return n, nil
	}
	n, err := fs.loadNode(num)
	if err != nil {
		return nil, err
	}
	fs.nodes.Put(num, n, n.cost)
	return n, nil
}

func (fs *FS) loadNode(num uint64) (*node, error) {
	rec, err := fs.readRecord(num)
	if err != nil {
		return nil, err
	}
	if rec.flags&recInUse == 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is not in use: %w", num, guestfs.ErrNotExist)
	}
	if rec.base != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is an extension of record %d: %w", num, rec.base, guestfs.ErrCorrupt)
	}
	attrs, err := fs.gatherAttrs(rec)
	if err != nil {
		return nil, err
	}
	n, err := fs.buildNode(rec, attrs)
	if err != nil {
		return nil, fmt.Errorf("ntfs: file %d: %w", num, err)
	}
	return n, nil
}

// gatherAttrs returns a base record's attributes with, where it has an
// $ATTRIBUTE_LIST, those the list places in extension records. Each
// extension record must name this record as its base, so that lists
// cannot chain records of other files; a list is never followed from an
// extension record.
func (fs *FS) gatherAttrs(rec *record) ([]*attr, error) {
	var attrs []*attr
	var list *attr
	for i := range rec.attrs {
		a := &rec.attrs[i]
		if a.typ == atAttributeList {
			if list != nil {
				return nil, fmt.Errorf("ntfs: file %d: two attribute lists: %w", rec.num, guestfs.ErrCorrupt)
			}
			list = a
			continue
		}
		attrs = append(attrs, a)
	}
	if list == nil {
		return attrs, nil
	}
	lv, err := fs.attrValue(list, maxAttrList)
	if err != nil {
		return nil, fmt.Errorf("ntfs: file %d: attribute list: %w", rec.num, err)
	}
	exts := map[uint64]*record{}
	type key struct {
		rec  uint64
		inst uint16
	}
	seen := map[key]bool{}
	for off := 0; off < len(lv); {
		if off+26 > len(lv) {
			return nil, fmt.Errorf("ntfs: file %d: attribute list entry at %d past the end: %w", rec.num, off, guestfs.ErrCorrupt)
		}
		typ := binary.LittleEndian.Uint32(lv[off:])
		n := int(binary.LittleEndian.Uint16(lv[off+4:]))
		ref := binary.LittleEndian.Uint64(lv[off+16:]) & refMask
		inst := binary.LittleEndian.Uint16(lv[off+24:])
		if n < 26 || off+n > len(lv) {
			return nil, fmt.Errorf("ntfs: file %d: attribute list entry of %d bytes at %d: %w", rec.num, n, off, guestfs.ErrCorrupt)
		}
		off += n
		if ref == rec.num || typ == atAttributeList || seen[key{ref, inst}] {
			continue
		}
		seen[key{ref, inst}] = true
		ext := exts[ref]
		if ext == nil {
			ext, err = fs.readRecord(ref)
			if err != nil {
				if errors.Is(err, guestfs.ErrNotExist) {
					err = fmt.Errorf("%v: %w", err, guestfs.ErrCorrupt)
				}
				return nil, fmt.Errorf("ntfs: file %d: attribute list: %w", rec.num, err)
			}
			if ext.flags&recInUse == 0 || ext.base != rec.num {
				return nil, fmt.Errorf("ntfs: file %d: attribute list names record %d, which belongs to %d: %w", rec.num, ref, ext.base, guestfs.ErrCorrupt)
			}
			exts[ref] = ext
		}
		found := false
		for i := range ext.attrs {
			if a := &ext.attrs[i]; a.typ == typ && a.instance == inst {
				attrs = append(attrs, a)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("ntfs: file %d: attribute %#x/%d not in record %d: %w", rec.num, typ, inst, ref, guestfs.ErrCorrupt)
		}
	}
	return attrs, nil
}

// attrValue reads a whole attribute value of at most max bytes.
func (fs *FS) attrValue(a *attr, max int64) ([]byte, error) {
	if !a.nonRes {
		return a.value, nil
	}
	s, err := fs.buildStream(extents{a})
	if err != nil {
		return nil, err
	}
	if s.size > max {
		return nil, fmt.Errorf("value of %d bytes, more than %d: %w", s.size, max, guestfs.ErrCorrupt)
	}
	b := make([]byte, s.size)
	if err := fs.readStreamFull(s, b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// buildNode interprets the attributes of a file.
func (fs *FS) buildNode(rec *record, attrs []*attr) (*node, error) {
	n := &node{num: rec.num, flags: rec.flags, linkCount: rec.linkCount}
	type skey struct {
		typ  uint32
		name string
	}
	pieces := map[skey]extents{}
	var order []skey
	for _, a := range attrs {
		switch a.typ {
		case atStandardInfo:
			v := a.value
			if a.nonRes || len(v) < 48 {
				return nil, fmt.Errorf("$STANDARD_INFORMATION of %d bytes: %w", len(v), guestfs.ErrCorrupt)
			}
			n.si = stdInfo{
				created:    binary.LittleEndian.Uint64(v[0:]),
				modified:   binary.LittleEndian.Uint64(v[8:]),
				mftChanged: binary.LittleEndian.Uint64(v[16:]),
				accessed:   binary.LittleEndian.Uint64(v[24:]),
				attrs:      binary.LittleEndian.Uint32(v[32:]),
			}
			n.hasSI = true
		case atFileName:
			fn, err := parseFileName(a.value)
			if a.nonRes || err != nil {
				return nil, fmt.Errorf("$FILE_NAME: %w", guestfs.ErrCorrupt)
			}
			n.names = append(n.names, fn)
			n.cost += 32 + len(fn.name)
		case atVolumeName:
			if !a.nonRes {
				n.volName = decodeName(a.value)
			}
		case atVolumeInfo:
			if !a.nonRes && len(a.value) >= 12 {
				n.volFlags = binary.LittleEndian.Uint16(a.value[10:])
			}
		case atReparsePoint, atEA:
			v, err := fs.attrValue(a, maxSmallAttr)
			if err != nil {
				return nil, fmt.Errorf("attribute %#x: %w", a.typ, err)
			}
			v = bytes.Clone(v)
			if a.typ == atReparsePoint {
				n.reparse = v
			} else {
				n.ea = v
			}
			n.cost += len(v)
		case atIndexRoot:
			if a.name == "$I30" {
				if a.nonRes {
					return nil, fmt.Errorf("non-resident $INDEX_ROOT: %w", guestfs.ErrCorrupt)
				}
				n.indexRoot = bytes.Clone(a.value)
				n.cost += len(a.value)
			}
		case atData, atIndexAlloc:
			if a.typ == atIndexAlloc && a.name != "$I30" {
				continue
			}
			k := skey{a.typ, a.name}
			if _, ok := pieces[k]; !ok {
				order = append(order, k)
			}
			pieces[k] = append(pieces[k], a)
		}
	}
	for _, k := range order {
		s, err := fs.buildStream(pieces[k])
		if err != nil {
			return nil, fmt.Errorf("attribute %#x %q: %w", k.typ, k.name, err)
		}
		if s.resident != nil {
			s.resident = bytes.Clone(s.resident)
		}
		n.cost += s.cost()
		switch {
		case k.typ == atIndexAlloc:
			n.indexAlloc = s
		case k.name == "":
			n.data = s
		default:
			n.named = append(n.named, namedStream{k.name, s})
			n.cost += len(k.name)
		}
	}
	n.cost += 256
	return n, nil
}

// maxSmallAttr bounds the values read whole into a node: reparse data
// (at most 16 KiB in NTFS) and extended attributes (at most 64 KiB).
const maxSmallAttr = 64 << 10

// parseFileName parses a $FILE_NAME value, or the key of a directory
// index entry, which is the same structure.
func parseFileName(v []byte) (fileName, error) {
	if len(v) < 66 {
		return fileName{}, guestfs.ErrCorrupt
	}
	l := int(v[64])
	if 66+2*l > len(v) {
		return fileName{}, guestfs.ErrCorrupt
	}
	return fileName{
		parent: binary.LittleEndian.Uint64(v) & refMask,
		ns:     v[65],
		name:   decodeName(v[66 : 66+2*l]),
	}, nil
}
