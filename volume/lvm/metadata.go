package lvm

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// vgMeta is the volume group a PV's metadata text describes.
type vgMeta struct {
	name, uuid string
	seqno      int64
	extentSize int64 // bytes
	pvs        []pvMeta
	lvs        []lvMeta
}

type pvMeta struct {
	name, uuid, device string
	peStart, peCount   int64 // bytes, extents
	missing            bool
}

type lvMeta struct {
	name, uuid string
	visible    bool
	tags       []string
	segs       []segMeta
	bad        string // why the LV's segments cannot be used, if they cannot
}

type segMeta struct {
	start, count int64 // logical extents
	typ          string
	stripeSize   int64 // bytes
	stripes      []stripeMeta
	// refs are the string values of a segment of another type, by key
	// (array elements under their array's key): the LVs it is made of.
	refs []ref
}

type ref struct{ key, val string }

type stripeMeta struct {
	pv string
	pe int64
}

const sectorSize = 512

// mul multiplies non-negative numbers read from disk, or says they overflow.
func mul(a, b int64) (int64, bool) {
	if a < 0 || b < 0 || (a != 0 && b > math.MaxInt64/a) {
		return 0, false
	}
	return a * b, true
}

// parseVG reads the VG section of parsed metadata text: the first
// top-level section, as LVM takes it.
func parseVG(root *node) (*vgMeta, error) {
	var vgn *node
	for _, c := range root.children {
		if c.val == nil {
			vgn = c
			break
		}
	}
	if vgn == nil {
		return nil, fmt.Errorf("no volume group section")
	}
	vg := &vgMeta{name: vgn.key}
	var ok bool
	if vg.uuid, ok = vgn.str("id"); !ok {
		return nil, fmt.Errorf("VG %q: no id", vg.name)
	}
	if vg.seqno, ok = vgn.int("seqno"); !ok || vg.seqno < 0 {
		return nil, fmt.Errorf("VG %q: no seqno", vg.name)
	}
	es, ok := vgn.int("extent_size")
	if !ok || es <= 0 {
		return nil, fmt.Errorf("VG %q: extent size %d", vg.name, es)
	}
	if vg.extentSize, ok = mul(es, sectorSize); !ok || vg.extentSize > 1<<50 {
		return nil, fmt.Errorf("VG %q: extent size of %d sectors", vg.name, es)
	}
	pvs := vgn.child("physical_volumes")
	if pvs == nil || pvs.val != nil {
		return nil, fmt.Errorf("VG %q: no physical_volumes section", vg.name)
	}
	names := map[string]bool{}
	for _, pn := range pvs.sections() {
		pv := pvMeta{name: pn.key}
		pv.uuid, _ = pn.str("id")
		pv.device, _ = pn.str("device")
		start, ok1 := pn.int("pe_start")
		count, ok2 := pn.int("pe_count")
		if pv.uuid == "" || !ok1 || !ok2 || start < 0 || count < 0 {
			return nil, fmt.Errorf("VG %q: PV %q lacks id, pe_start or pe_count", vg.name, pv.name)
		}
		if pv.peStart, ok = mul(start, sectorSize); !ok {
			return nil, fmt.Errorf("VG %q: PV %q: pe_start %d", vg.name, pv.name, start)
		}
		pv.peCount = count
		for _, f := range append(pn.strings("flags"), pn.strings("status")...) {
			if f == "MISSING" {
				pv.missing = true
			}
		}
		if names[pv.name] {
			return nil, fmt.Errorf("VG %q: PV %q listed twice", vg.name, pv.name)
		}
		names[pv.name] = true
		vg.pvs = append(vg.pvs, pv)
	}
	for _, ln := range vgn.child("logical_volumes").sections() {
		vg.lvs = append(vg.lvs, parseLV(vg, ln, names))
	}
	return vg, nil
}

func parseLV(vg *vgMeta, ln *node, pvNames map[string]bool) lvMeta {
	lv := lvMeta{name: ln.key}
	lv.uuid, _ = ln.str("id")
	lv.tags = ln.strings("tags")
	for _, s := range ln.strings("status") {
		if s == "VISIBLE" {
			lv.visible = true
		}
	}
	for _, sn := range ln.sections() {
		if !strings.HasPrefix(sn.key, "segment") {
			continue
		}
		seg, err := parseSegment(vg, sn, pvNames)
		if err != nil {
			if lv.bad == "" {
				lv.bad = fmt.Sprintf("%s: %v", sn.key, err)
			}
			continue
		}
		lv.segs = append(lv.segs, seg)
	}
	sort.SliceStable(lv.segs, func(i, j int) bool { return lv.segs[i].start < lv.segs[j].start })
	if lv.bad == "" {
		next := int64(0)
		for _, s := range lv.segs {
			if s.start > next {
				lv.bad = fmt.Sprintf("logical extents %d-%d are in no segment", next, s.start-1)
				break
			}
			if s.start < next {
				lv.bad = fmt.Sprintf("segments overlap at logical extent %d", s.start)
				break
			}
			next = s.start + s.count
		}
	}
	return lv
}

func parseSegment(vg *vgMeta, sn *node, pvNames map[string]bool) (segMeta, error) {
	var seg segMeta
	var ok1, ok2 bool
	seg.start, ok1 = sn.int("start_extent")
	seg.count, ok2 = sn.int("extent_count")
	seg.typ, _ = sn.str("type")
	if !ok1 || !ok2 || seg.start < 0 || seg.count <= 0 || seg.start > math.MaxInt64-seg.count {
		return seg, fmt.Errorf("extents %d+%d", seg.start, seg.count)
	}
	if _, ok := mul(seg.start+seg.count, vg.extentSize); !ok {
		return seg, fmt.Errorf("extents %d+%d overflow", seg.start, seg.count)
	}
	if seg.typ == "" {
		return seg, fmt.Errorf("no type")
	}
	if seg.typ != "striped" {
		for _, c := range sn.children {
			if c.val == nil || c.key == "type" {
				continue
			}
			if c.val.kind == kindString {
				seg.refs = append(seg.refs, ref{c.key, c.val.str})
			}
			for _, v := range c.val.arr {
				if v.kind == kindString {
					seg.refs = append(seg.refs, ref{c.key, v.str})
				}
			}
		}
		return seg, nil
	}
	n, ok := sn.int("stripe_count")
	c := sn.child("stripes")
	if !ok || n <= 0 || c == nil || c.val == nil || c.val.kind != kindArray || int64(len(c.val.arr)) != 2*n {
		return seg, fmt.Errorf("stripe_count %d and stripes do not match", n)
	}
	if seg.count%n != 0 {
		return seg, fmt.Errorf("%d extents do not divide into %d stripes", seg.count, n)
	}
	if n > 1 {
		ss, ok := sn.int("stripe_size")
		if !ok || ss <= 0 {
			return seg, fmt.Errorf("stripe size %d", ss)
		}
		seg.stripeSize, _ = mul(ss, sectorSize)
		if seg.stripeSize <= 0 || seg.stripeSize > vg.extentSize {
			return seg, fmt.Errorf("stripe size of %d sectors", ss)
		}
		if per, _ := mul(seg.count/n, vg.extentSize); per%seg.stripeSize != 0 {
			return seg, fmt.Errorf("stripe size of %d sectors does not divide a stripe's %d bytes", ss, per)
		}
	}
	for i := 0; i < len(c.val.arr); i += 2 {
		name, pe := c.val.arr[i], c.val.arr[i+1]
		if name.kind != kindString || pe.kind != kindInt || pe.num < 0 {
			return seg, fmt.Errorf("stripe %d is not a PV name and an extent", i/2)
		}
		if !pvNames[name.str] {
			return seg, fmt.Errorf("stripe %d names PV %q, which the VG does not list", i/2, name.str)
		}
		if pe.num > math.MaxInt64-seg.count {
			return seg, fmt.Errorf("stripe %d: extent %d", i/2, pe.num)
		}
		seg.stripes = append(seg.stripes, stripeMeta{pv: name.str, pe: pe.num})
	}
	return seg, nil
}

// formatUUID writes a PV header's 32-character UUID as LVM prints UUIDs:
// 6-4-4-4-4-4-6 characters.
func formatUUID(id string) string {
	if len(id) != 32 {
		return id
	}
	var b strings.Builder
	for i, n := range []int{6, 4, 4, 4, 4, 4, 6} {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(id[:n])
		id = id[n:]
	}
	return b.String()
}
