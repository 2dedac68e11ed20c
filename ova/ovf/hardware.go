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
// configuration.
func (p *parser) activate(items []item) {
	for i, on := range activeIn(items, p.env.DefaultConfiguration) {
		items[i].active = on
	}
}

// activeIn says which items are in effect in configuration cfg. An item
// limited to configurations is in effect when cfg is one of them; an
// unconditional item is in effect unless an item with the same InstanceID
// for cfg overrides it (Cisco's descriptors give each profile its own CPU
// item, InstanceID 1).
func activeIn(items []item, cfg string) []bool {
	chosen := map[string]int{}
	for i := range items {
		it := &items[i]
		if len(it.configs) > 0 && !slices.Contains(it.configs, cfg) {
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
	active := make([]bool, len(items))
	for _, i := range chosen {
		active[i] = true
	}
	return active
}

// summarise sets CPUs and MemoryBytes from the items active in the default
// configuration and, when the descriptor declares deployment options,
// ByConfiguration from those active in each. An unusable item is reported
// once, in whichever configuration first counts it.
func (p *parser) summarise(vs *VirtualSystem, items []item) {
	a := amounts{p: p, system: vs.ID, items: items, counted: make([]amount, len(items))}
	def := make([]bool, len(items))
	for i, it := range items {
		def[i] = it.active
	}
	vs.CPUs, vs.MemoryBytes = a.sum(def, "")
	if len(p.env.DeploymentOptions) == 0 {
		return
	}
	vs.Configuration = p.env.DefaultConfiguration
	// Each option costs a pass over the items; a hostile descriptor with
	// tens of thousands of both would take minutes.
	work := len(p.env.DeploymentOptions) * len(items)
	if work > p.sizingBudget {
		p.warnf("VirtualSystem %q: %d deployment options over %d items are more than this reader sizes; CPUs and memory per option not given", vs.ID, len(p.env.DeploymentOptions), len(items))
		return
	}
	p.sizingBudget -= work
	for _, o := range p.env.DeploymentOptions {
		s := Sizing{Configuration: o.ID, CPUs: vs.CPUs, MemoryBytes: vs.MemoryBytes}
		if o.ID != vs.Configuration {
			s.CPUs, s.MemoryBytes = a.sum(activeIn(items, o.ID), o.ID)
		}
		vs.ByConfiguration = append(vs.ByConfiguration, s)
	}
}

// amounts are the CPU counts and memory sizes of a system's items, each
// read once, when a configuration first counts it.
type amounts struct {
	p       *parser
	system  string
	items   []item
	counted []amount
}

type amount struct {
	read bool
	ok   bool
	n    int64 // CPUs or bytes
}

// of reads item i's amount, warning if it cannot be used.
func (a *amounts) of(i int) amount {
	if a.counted[i].read {
		return a.counted[i]
	}
	it := a.items[i]
	am := amount{read: true}
	switch it.rt {
	case rtCPU:
		n, err := parseCount(it.quantity)
		if err != nil || n > maxPlausibleCPUs {
			a.p.warnf("VirtualSystem %q: CPU item %q has VirtualQuantity %q; not counted", a.system, it.instanceID, it.quantity)
			break
		}
		am.ok, am.n = true, n
	case rtMemory:
		units := it.units
		if strings.TrimSpace(units) == "" {
			// DSP0243 makes AllocationUnits mandatory for memory; those
			// who omit it (and virt-v2v, which ignores it) mean MiB.
			units = "byte * 2^20"
			a.p.warnf("VirtualSystem %q: memory item %q has no AllocationUnits; read as MiB", a.system, it.instanceID)
		}
		b, err := bytesOf(it.quantity, units)
		if err != nil {
			a.p.warnf("VirtualSystem %q: memory item %q (%q × %q) is %v; not counted", a.system, it.instanceID, it.quantity, it.units, err)
			break
		}
		am.ok, am.n = true, b
	}
	a.counted[i] = am
	return am
}

// sum adds up the CPUs and memory of the active items; cfg names the
// configuration in a warning, empty for the default.
func (a *amounts) sum(active []bool, cfg string) (int, int64) {
	var cpus, mem int64
	memOverflow := false
	for i, it := range a.items {
		if !active[i] || (it.rt != rtCPU && it.rt != rtMemory) {
			continue
		}
		am := a.of(i)
		switch {
		case !am.ok:
		case it.rt == rtCPU:
			cpus += am.n // each at most maxPlausibleCPUs, so this cannot wrap
		case mem > math.MaxInt64-am.n:
			memOverflow = true
		default:
			mem += am.n
		}
	}
	in := ""
	if cfg != "" {
		in = fmt.Sprintf(" in configuration %q", cfg)
	}
	if memOverflow {
		a.p.warnf("VirtualSystem %q: memory adds up beyond 2^63 bytes%s; not counted", a.system, in)
		mem = 0
	}
	if cpus > maxPlausibleCPUs {
		a.p.warnf("VirtualSystem %q: %d CPUs in all%s; not counted", a.system, cpus, in)
		cpus = 0
	}
	return int(cpus), mem
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
