package ovf

import (
	"slices"
	"strings"
)

// resolveDisks computes each disk's capacity in bytes, resolving ${name}
// capacities (DSP0243 9.1) against the ProductSection properties, and
// checks each fileRef and parentRef.
func (p *parser) resolveDisks() {
	files := map[string]bool{}
	hrefs := map[string]string{}
	for _, f := range p.env.Files {
		if f.ID != "" && files[f.ID] {
			p.warnf("File id %q is declared twice", f.ID)
		}
		files[f.ID] = true
		h := strings.TrimPrefix(f.Href, "./")
		if other, dup := hrefs[h]; dup && h != "" {
			p.warnf("Files %q and %q both name %q", other, f.ID, f.Href)
		}
		hrefs[h] = f.ID
	}
	disks := map[string]bool{}
	for _, d := range p.env.Disks {
		if d.ID != "" && disks[d.ID] {
			p.warnf("Disk id %q is declared twice", d.ID)
		}
		disks[d.ID] = true
	}
	usedBy := map[string]string{}
	for i := range p.env.Disks {
		d := &p.env.Disks[i]
		d.Capacity = p.capacity(d)
		if d.FileRef != "" {
			if !files[d.FileRef] {
				p.warnf("Disk %q: fileRef %q names no File", d.ID, d.FileRef)
			} else if other, dup := usedBy[d.FileRef]; dup {
				p.warnf("File %q is the image of two disks, %q and %q", d.FileRef, other, d.ID)
			} else {
				usedBy[d.FileRef] = d.ID
			}
		}
		if d.ParentRef != "" && !disks[d.ParentRef] {
			p.warnf("Disk %q: parentRef %q names no Disk", d.ID, d.ParentRef)
		}
	}
}

// capacity is a disk's capacity in bytes, or -1 with a warning saying why
// it cannot be known.
func (p *parser) capacity(d *Disk) int64 {
	raw := d.CapacityRaw
	if raw == "" {
		p.warnf("Disk %q has no ovf:capacity", d.ID)
		return -1
	}
	if strings.HasPrefix(raw, "${") && strings.HasSuffix(raw, "}") {
		name := raw[2 : len(raw)-1]
		v, ok := p.propertyValue(name)
		if !ok {
			p.warnf("Disk %q: capacity %q names no ProductSection property", d.ID, raw)
			return -1
		}
		raw = v
	}
	b, err := bytesOf(raw, d.Units)
	if err != nil {
		p.warnf("Disk %q: capacity %q × %q is %v; unknown", d.ID, raw, d.Units, err)
		return -1
	}
	return b
}

// propertyValue finds the property a ${name} reference names: by key, or
// by class.key or class.key.instance as DSP0243 composes them. Properties
// limited to another deployment configuration do not count.
func (p *parser) propertyValue(name string) (string, bool) {
	for _, pr := range p.props {
		if pr.Configuration != "" && !slices.Contains(strings.Fields(pr.Configuration), p.env.DefaultConfiguration) {
			continue
		}
		full := pr.Key
		if pr.Class != "" {
			full = pr.Class + "." + full
		}
		if pr.Instance != "" {
			full += "." + pr.Instance
		}
		if name == full || (name == pr.Key && pr.Class == "" && pr.Instance == "") {
			return pr.Value, true
		}
	}
	return "", false
}

// checkRefs checks every HostResource and NIC connection against the
// disks, files and networks, and reports disks no item attaches.
func (p *parser) checkRefs() {
	disks, files, nets := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, d := range p.env.Disks {
		disks[d.ID] = true
	}
	for _, f := range p.env.Files {
		files[f.ID] = true
	}
	for _, n := range p.env.Networks {
		nets[n.Name] = true
	}
	attached := map[string]bool{}
	for _, r := range p.refs {
		switch {
		case r.kind == "disk" && !disks[r.id]:
			p.warnf("VirtualSystem %q: item %q HostResource names disk %q, which DiskSection does not declare", r.system, r.item, r.id)
		case r.kind == "file" && !files[r.id]:
			p.warnf("VirtualSystem %q: item %q HostResource names file %q, which References does not declare", r.system, r.item, r.id)
		}
		if r.kind == "disk" {
			attached[r.id] = true
		}
	}
	// A delta disk's parent is in use through the child.
	for _, d := range p.env.Disks {
		if d.ParentRef != "" {
			attached[d.ParentRef] = true
		}
	}
	for _, d := range p.env.Disks {
		if !attached[d.ID] {
			p.warnf("Disk %q is not attached to any virtual hardware item", d.ID)
		}
	}
	for _, n := range p.nicNets {
		if !nets[n.network] {
			p.warnf("VirtualSystem %q: NIC %q connects to network %q, which NetworkSection does not declare", n.system, n.item, n.network)
		}
	}
}

// checkSystems reports systems that share an id.
func (p *parser) checkSystems() {
	seen := map[string]bool{}
	for _, s := range p.env.Systems {
		if s.ID != "" && seen[s.ID] {
			p.warnf("more than one VirtualSystem has ovf:id %q", s.ID)
		}
		seen[s.ID] = true
	}
}
