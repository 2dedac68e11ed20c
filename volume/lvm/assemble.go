package lvm

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// VG is a volume group assembled from the PVs that carry it.
type VG struct {
	Name, UUID string
	Seqno      int64 // of the metadata used: the highest any PV carries
	ExtentSize int64 // bytes
	PVs        []*VGPV
	LVs        []*LV // in metadata order, internal ones included
	Warnings   []string
}

// VGPV is a PV as the volume group's metadata lists it.
type VGPV struct {
	Name    string // "pv0", the name segments use
	UUID    string
	Device  string // where LVM last saw it: a hint only
	PEStart int64  // bytes
	PECount int64
	PV      *PV // nil when the PV is missing
}

// LV is a logical volume.
type LV struct {
	Name, UUID string
	Size       int64 // bytes: the sum of its segments
	// Type is "linear" or "striped" for what this package reads, else
	// the segment type LVM gives ("thin", "thin-pool", "raid1", "mirror",
	// "cache", ...), or "snapshot" for a snapshot's copy-on-write volume
	// and its internal snapshot LV.
	Type string
	// Visible is false for LVM's internal volumes (a thin pool's _tdata
	// and _tmeta, RAID images, mirror legs, snapshotN, pool spares...):
	// they are parts of other volumes, not user volumes.
	Visible bool
	// Supported: Open maps the volume (every segment linear or striped,
	// every PV present, every extent inside its PV). Reason says why not.
	Supported bool
	Reason    string
	Tags      []string
	Segments  []Segment

	vg *VG
}

// Segment is a run of logical extents and where it lies.
type Segment struct {
	Start, Count int64  // logical extents
	Type         string // "linear", "striped", or LVM's segment type
	StripeSize   int64  // bytes; 0 for linear
	Stripes      []Stripe
	// LVs names the logical volumes a segment of another type is made
	// of (a thin pool's data and metadata, RAID images, a snapshot's
	// origin and COW store).
	LVs []string
}

// Stripe is one PV area of a linear or striped segment.
type Stripe struct {
	PV      string // the PV's name in the metadata ("pv0")
	PVUUID  string
	PEStart int64 // first physical extent
}

// Assemble groups PVs into volume groups by VG UUID, each with the
// metadata of the highest seqno its PVs carry, and finds which of the
// PVs its metadata names are present. A logical volume on a missing PV is
// listed, unsupported. PVs that belong to no volume group are left out.
func Assemble(pvs []*PV) (vgs []*VG, warnings []string) {
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }
	byUUID := map[string]*PV{}
	for _, pv := range pvs {
		if other := byUUID[pv.UUID]; other != nil {
			warn("two volumes carry PV %s; using the first", pv.UUID)
			continue
		}
		byUUID[pv.UUID] = pv
	}
	newest := map[string]*vgMeta{}
	var order []string
	for _, pv := range pvs {
		if byUUID[pv.UUID] != pv || pv.vg == nil {
			continue
		}
		m, seen := newest[pv.vg.uuid]
		if !seen {
			order = append(order, pv.vg.uuid)
		}
		if !seen || pv.vg.seqno > m.seqno {
			newest[pv.vg.uuid] = pv.vg
		}
	}
	names := map[string]string{}
	for _, id := range order {
		m := newest[id]
		vg := build(m, byUUID)
		for _, pv := range pvs {
			if pv.vg != nil && pv.vg.uuid == id && pv.vg.seqno < m.seqno {
				vg.warn("PV %s carries metadata seqno %d, older than %d; using the newer", pv.UUID, pv.vg.seqno, m.seqno)
			}
		}
		if other, ok := names[vg.Name]; ok {
			warn("two volume groups are named %s (%s and %s)", vg.Name, other, vg.UUID)
		}
		names[vg.Name] = vg.UUID
		vgs = append(vgs, vg)
	}
	return vgs, warnings
}

func (vg *VG) warn(format string, args ...any) {
	vg.Warnings = append(vg.Warnings, fmt.Sprintf(format, args...))
}

// build makes a VG of its metadata and the PVs at hand.
func build(m *vgMeta, byUUID map[string]*PV) *VG {
	vg := &VG{Name: m.name, UUID: m.uuid, Seqno: m.seqno, ExtentSize: m.extentSize}
	pvByName := map[string]*VGPV{}
	for _, p := range m.pvs {
		vp := &VGPV{Name: p.name, UUID: p.uuid, Device: p.device, PEStart: p.peStart, PECount: p.peCount}
		switch pv := byUUID[p.uuid]; {
		case pv == nil:
			vg.warn("PV %s (%s, last seen as %s) is missing", p.name, p.uuid, p.device)
		case p.missing:
			vg.warn("PV %s (%s) is marked MISSING in the metadata", p.name, p.uuid)
		default:
			vp.PV = pv
		}
		vg.PVs = append(vg.PVs, vp)
		pvByName[p.name] = vp
	}
	lvNames := map[string]*LV{}
	for _, lm := range m.lvs {
		lv := &LV{Name: lm.name, UUID: lm.uuid, Visible: lm.visible, Tags: lm.tags, vg: vg}
		for _, s := range lm.segs {
			seg := Segment{Start: s.start, Count: s.count, Type: s.typ, StripeSize: s.stripeSize}
			for _, st := range s.stripes {
				seg.Stripes = append(seg.Stripes, Stripe{PV: st.pv, PVUUID: pvByName[st.pv].UUID, PEStart: st.pe})
			}
			if s.typ == "striped" && len(s.stripes) == 1 {
				seg.Type = "linear"
			}
			for _, r := range s.refs {
				seg.LVs = append(seg.LVs, r.val)
			}
			lv.Segments = append(lv.Segments, seg)
			// Each term is bounded by parseSegment; the sum of
			// overlapping segments is not.
			if n := s.count * m.extentSize; lv.Size <= math.MaxInt64-n {
				lv.Size += n
			} else if lm.bad == "" {
				lm.bad = "segments add up to more than 8 EiB"
			}
		}
		lv.Type, lv.Reason = lvType(lv), lm.bad
		vg.LVs = append(vg.LVs, lv)
		lvNames[lv.Name] = lv
	}
	// Keep only the strings of segments that name LVs, and mark the
	// volumes a snapshot is made of.
	for _, lv := range vg.LVs {
		for i := range lv.Segments {
			seg := &lv.Segments[i]
			var refs []string
			for _, s := range seg.LVs {
				if lvNames[s] != nil {
					refs = append(refs, s)
				}
			}
			seg.LVs = refs
		}
	}
	// A snapshot shows as its copy-on-write volume (lvs lists that
	// volume as the snapshot): its blocks are not the snapshot's
	// contents, which need the origin and the COW exception table.
	for _, lm := range m.lvs {
		for _, s := range lm.segs {
			if s.typ != "snapshot" {
				continue
			}
			if snap := lvNames[lm.name]; snap != nil {
				snap.Visible = false
			}
			for _, r := range s.refs {
				if cow := lvNames[r.val]; r.key == "cow_store" && cow != nil && cow.Name != lm.name {
					cow.Type = "snapshot"
					if cow.Reason == "" {
						cow.Reason = fmt.Sprintf("snapshot of %s (copy-on-write volume): snapshots are not mapped", originName(s))
					}
					// As LVM's lv_is_visible: a COW volume is shown
					// when its origin is.
					if origin := lvNames[originName(s)]; origin != nil {
						cow.Visible = origin.Visible
					}
				}
			}
		}
	}
	for _, lv := range vg.LVs {
		lv.Supported, lv.Reason = supported(lv, pvByName)
	}
	return vg
}

func originName(s segMeta) string {
	for _, r := range s.refs {
		if r.key == "origin" {
			return r.val
		}
	}
	return "?"
}

// lvType names an LV by its segments, as lvs does.
func lvType(lv *LV) string {
	typ := "linear"
	for _, s := range lv.Segments {
		switch s.Type {
		case "linear":
		case "striped":
			typ = "striped"
		default:
			return s.Type
		}
	}
	return typ
}

// supported says whether Open can map the LV, and if not why.
func supported(lv *LV, pvs map[string]*VGPV) (bool, string) {
	if lv.Reason != "" {
		return false, lv.Reason
	}
	if lv.Type != "linear" && lv.Type != "striped" {
		return false, fmt.Sprintf("%s volume: only linear and striped volumes are mapped", lv.Type)
	}
	if len(lv.Segments) == 0 {
		return false, "no segments"
	}
	var missing []string
	for _, s := range lv.Segments {
		per := s.Count / int64(len(s.Stripes))
		for _, st := range s.Stripes {
			vp := pvs[st.PV]
			if vp.PV == nil {
				missing = append(missing, vp.Name+" ("+vp.UUID+")")
				continue
			}
			end, ok := mul(st.PEStart+per, lv.vg.ExtentSize)
			if !ok || vp.PEStart > vp.PV.Size || end > vp.PV.Size-vp.PEStart {
				return false, fmt.Sprintf("extents %d-%d of PV %s lie past its end (%d bytes)", st.PEStart, st.PEStart+per-1, vp.Name, vp.PV.Size)
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return false, "missing PV " + strings.Join(dedupe(missing), ", ")
	}
	return true, ""
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
