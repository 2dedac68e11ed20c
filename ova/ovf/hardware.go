package ovf

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// CIM_ResourceAllocationSettingData ResourceType values this model reads.
const (
	rtCPU        = 3
	rtMemory     = 4
	rtIDE        = 5
	rtSCSI       = 6
	rtFC         = 7
	rtISCSI      = 8
	rtIB         = 9
	rtEthernet   = 10
	rtFloppy     = 14
	rtCD         = 15
	rtDVD        = 16
	rtDisk       = 17
	rtOtherStore = 20
)

// maxPlausibleCPUs is far beyond any machine; a larger count is a broken
// or hostile descriptor, not a system to summarise.
const maxPlausibleCPUs = 1 << 20

// item is one Item, StorageItem (OVF 2) or EthernetPortItem (OVF 2) of a
// VirtualHardwareSection or ResourceAllocationSection, with the
// rasd/sasd/epasd fields this model reads.
type item struct {
	instanceID    string
	rt            int
	subType       string
	quantity      string
	units         string
	hostResources []string
	parent        string
	address       string
	onParent      string
	connection    string
	name          string
	reservation   string
	limit         string
	weight        string
	configs       []string
	active        bool
}

// readItem reads one item; owner names the system or collection
// (`VirtualSystem "vm"`) and index is the item's position, to name it in a
// warning when it has no InstanceID.
func (p *parser) readItem(n *node, owner string, index int) item {
	it := item{
		instanceID:  n.field("InstanceID"),
		subType:     n.field("ResourceSubType"),
		quantity:    n.field("VirtualQuantity"),
		units:       n.field("AllocationUnits"),
		parent:      n.field("Parent"),
		address:     n.field("Address"),
		onParent:    n.field("AddressOnParent"),
		connection:  n.field("Connection"),
		name:        n.field("ElementName"),
		reservation: n.field("Reservation"),
		limit:       n.field("Limit"),
		weight:      n.field("Weight"),
		configs:     strings.Fields(n.attr("configuration")),
	}
	if len(it.configs) == 0 {
		it.configs = nil
	}
	if it.name == "" {
		it.name = n.field("Caption") // OVF 0.9 and 2.x
	}
	for _, h := range n.fields("HostResource") {
		if h != "" {
			it.hostResources = append(it.hostResources, h)
		}
	}
	if it.instanceID == "" {
		p.warnf("%s: item %d (%q) has no InstanceID", owner, index, it.name)
	}
	rt := n.field("ResourceType")
	if v, err := strconv.Atoi(rt); err == nil && v >= 0 && v <= 65535 {
		it.rt = v
	} else {
		p.warnf("%s: item %q has no usable ResourceType (%q)", owner, it.instanceID, rt)
	}
	for _, c := range it.configs {
		if !p.configs[c] {
			p.warnf("%s: item %q belongs to configuration %q, which no DeploymentOptionSection declares", owner, it.instanceID, c)
		}
	}
	return it
}

// sectionItems reads the items of a VirtualHardwareSection or a
// ResourceAllocationSection, the same way for both, and marks those in
// effect in the default configuration.
func (p *parser) sectionItems(section *node, owner string) []item {
	var items []item
	index := 0
	for _, k := range section.kids {
		if !k.vendor && (k.kind == "Item" || k.kind == "StorageItem" || k.kind == "EthernetPortItem") {
			it := p.readItem(k, owner, index)
			index++
			// Items with ovf:bound="min" or "max" give the range a deployer
			// may choose from; the unbounded item is the value.
			if b := k.attr("bound"); b == "min" || b == "max" {
				continue
			}
			items = append(items, it)
		}
	}
	p.activate(items)
	return items
}

// hardware reads a VirtualHardwareSection into vs.
func (p *parser) hardware(vs *VirtualSystem, h *node) {
	if s := h.child("System"); s != nil {
		vs.HardwareFamily = s.field("VirtualSystemType")
	}
	for _, k := range h.kids {
		if k.vendor && k.name.Local == "Config" && k.vendorAttr("key") == "firmware" {
			vs.Firmware = k.vendorAttr("value")
		}
	}
	items := p.sectionItems(h, fmt.Sprintf("VirtualSystem %q", vs.ID))
	p.summarise(vs, items)
	p.devices(vs, items)
}

// activate marks the items in effect in the default deployment
// configuration. An item limited to configurations is in effect when the
// default is one of them; an unconditional item is in effect unless an
// item with the same InstanceID for the default configuration overrides it
// (Cisco's descriptors give each profile its own CPU item, InstanceID 1).
func (p *parser) activate(items []item) {
	def := p.env.DefaultConfiguration
	chosen := map[string]int{}
	for i := range items {
		it := &items[i]
		if len(it.configs) > 0 && !slices.Contains(it.configs, def) {
			continue
		}
		key := it.instanceID
		if key == "" {
			key = "\x00" + strconv.Itoa(i) // no id: never overrides or is overridden
		}
		if j, ok := chosen[key]; ok && len(items[j].configs) > 0 && len(it.configs) == 0 {
			continue // a configuration-specific item already overrides this one
		}
		chosen[key] = i
	}
	for _, i := range chosen {
		items[i].active = true
	}
}

// summarise sets CPUs and MemoryBytes from the active items.
func (p *parser) summarise(vs *VirtualSystem, items []item) {
	var cpus, mem int64
	memOverflow := false
	for _, it := range items {
		if !it.active {
			continue
		}
		switch it.rt {
		case rtCPU:
			n, err := parseCount(it.quantity)
			if err != nil || n > maxPlausibleCPUs {
				p.warnf("VirtualSystem %q: CPU item %q has VirtualQuantity %q; not counted", vs.ID, it.instanceID, it.quantity)
				continue
			}
			cpus += n
		case rtMemory:
			units := it.units
			if strings.TrimSpace(units) == "" {
				// DSP0243 makes AllocationUnits mandatory for memory; those
				// who omit it (and virt-v2v, which ignores it) mean MiB.
				units = "byte * 2^20"
				p.warnf("VirtualSystem %q: memory item %q has no AllocationUnits; read as MiB", vs.ID, it.instanceID)
			}
			b, err := bytesOf(it.quantity, units)
			if err != nil {
				p.warnf("VirtualSystem %q: memory item %q (%q × %q) is %v; not counted", vs.ID, it.instanceID, it.quantity, it.units, err)
				continue
			}
			if mem > math.MaxInt64-b {
				memOverflow = true
				continue
			}
			mem += b
		}
	}
	if memOverflow {
		p.warnf("VirtualSystem %q: memory adds up beyond 2^63 bytes; not counted", vs.ID)
		mem = 0
	}
	if cpus > maxPlausibleCPUs {
		p.warnf("VirtualSystem %q: %d CPUs in all; not counted", vs.ID, cpus)
		cpus = 0
	}
	vs.CPUs, vs.MemoryBytes = int(cpus), mem
}

// controllerType names a storage controller, or "" for other items.
func controllerType(rt int, subType string) string {
	switch rt {
	case rtIDE:
		return "ide"
	case rtSCSI:
		return "scsi"
	case rtFC:
		return "fc"
	case rtISCSI:
		return "iscsi"
	case rtIB:
		return "ib"
	case rtOtherStore:
		s := strings.ToLower(subType)
		switch {
		case strings.Contains(s, "nvme"):
			return "nvme"
		case strings.Contains(s, "ahci"), strings.Contains(s, "sata"):
			return "sata"
		}
		return "other"
	}
	return ""
}

// devices fills in controllers, drives and NICs, wiring each drive to its
// controller and to the Disk or File its HostResource names.
func (p *parser) devices(vs *VirtualSystem, items []item) {
	// byID finds the item a rasd:Parent names, preferring the active one
	// where configurations reuse an InstanceID.
	byID := map[string]int{}
	for i, it := range items {
		if j, ok := byID[it.instanceID]; !ok || (!items[j].active && it.active) {
			byID[it.instanceID] = i
		}
	}
	for _, it := range items {
		if t := controllerType(it.rt, it.subType); t != "" {
			vs.Controllers = append(vs.Controllers, Controller{
				InstanceID: it.instanceID, Type: t, ResourceType: it.rt, SubType: it.subType,
				Address: it.address, Name: it.name, Configs: it.configs, Active: it.active,
			})
		}
	}
	for _, it := range items {
		refs := p.hostResources(vs.ID, it)
		switch {
		case it.rt == rtEthernet:
			vs.NICs = append(vs.NICs, NIC{
				InstanceID: it.instanceID, Name: it.name, Network: it.connection, SubType: it.subType,
				AddressOnParent: it.onParent, Configs: it.configs, Active: it.active,
			})
			if it.connection != "" {
				p.nicNets = append(p.nicNets, nicNet{system: vs.ID, item: it.instanceID, network: it.connection})
			}
		case it.rt == rtCD || it.rt == rtDVD:
			vs.CDROMs = append(vs.CDROMs, p.attachment(vs.ID, it, refs, items, byID))
		case it.rt == rtDisk || (it.rt != rtFloppy && slices.ContainsFunc(refs, func(r hostRef) bool { return r.kind == "disk" })):
			vs.Disks = append(vs.Disks, p.attachment(vs.ID, it, refs, items, byID))
		}
	}
}

// hostResources parses an item's HostResources, warning about the ones
// that are not ovf:/disk/ or ovf:/file/ references, and queues the rest
// to be checked against the disks and files once all are known.
func (p *parser) hostResources(system string, it item) []hostRef {
	var refs []hostRef
	for _, h := range it.hostResources {
		kind, id, canonical, ok := parseHostResource(h)
		if !ok {
			p.warnf("VirtualSystem %q: item %q HostResource %q is not an ovf:/disk/ or ovf:/file/ reference", system, it.instanceID, h)
			continue
		}
		if !canonical {
			p.warnf("VirtualSystem %q: item %q HostResource %q read as ovf:/%s/%s", system, it.instanceID, h, kind, id)
		}
		r := hostRef{system: system, item: it.instanceID, kind: kind, id: id}
		refs = append(refs, r)
		p.refs = append(p.refs, r)
	}
	if len(refs) > 1 {
		p.warnf("VirtualSystem %q: item %q has %d HostResources; the first is used", system, it.instanceID, len(refs))
	}
	return refs
}

// attachment builds the drive an item describes.
func (p *parser) attachment(system string, it item, refs []hostRef, items []item, byID map[string]int) Attachment {
	a := Attachment{
		InstanceID: it.instanceID, Name: it.name, ResourceType: it.rt,
		Controller: it.parent, AddressOnParent: it.onParent, Configs: it.configs, Active: it.active,
	}
	if len(it.hostResources) > 0 {
		a.HostResource = it.hostResources[0]
	}
	if len(refs) > 0 {
		if refs[0].kind == "disk" {
			a.DiskID = refs[0].id
		} else {
			a.FileID = refs[0].id
		}
	}
	if it.parent != "" {
		j, ok := byID[it.parent]
		switch {
		case !ok:
			p.warnf("VirtualSystem %q: item %q has rasd:Parent %q, which names no item", system, it.instanceID, it.parent)
		case controllerType(items[j].rt, items[j].subType) == "":
			p.warnf("VirtualSystem %q: item %q has rasd:Parent %q, which is not a storage controller (ResourceType %d)", system, it.instanceID, it.parent, items[j].rt)
		default:
			a.ControllerType = controllerType(items[j].rt, items[j].subType)
		}
	}
	return a
}
