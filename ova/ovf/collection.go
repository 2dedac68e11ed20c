package ovf

import (
	"fmt"
	"math"
	"slices"
)

// collection reads one VirtualSystemCollection and everything nested in
// it. outside is a StartupSection written outside the collection, used
// when it has none of its own.
func (p *parser) collection(n *node, path []string, outside *node) {
	c := Collection{ID: n.attr("id"), Name: n.childText("Name"), Path: slices.Clone(path)}
	if c.ID == "" {
		p.warnf("VirtualSystemCollection %q has no ovf:id", c.Name)
	}
	c.Product, c.Properties = p.products(n)
	c.EULAs = eulas(n)
	c.Annotation = annotation(n)
	var inner []*node
	for _, k := range n.kids {
		if !k.vendor && (k.kind == "VirtualSystem" || k.kind == "VirtualSystemCollection") {
			inner = append(inner, k)
			c.Members = append(c.Members, k.attr("id"))
		}
	}
	owner := fmt.Sprintf("VirtualSystemCollection %q", c.ID)
	if s := n.child("StartupSection"); s != nil {
		c.Startup = p.startup(s, owner, c.Members)
	} else if outside != nil {
		c.Startup = p.startup(outside, owner, c.Members)
	}
	if s := n.child("ResourceAllocationSection"); s != nil {
		c.Resources = p.allocations(s, owner)
	}
	p.env.Collections = append(p.env.Collections, c)
	below := append(slices.Clone(path), c.ID)
	for _, k := range inner {
		p.content(k, below, nil)
	}
}

// startup reads a StartupSection, checking that each item names one of
// the collection's members, once.
func (p *parser) startup(s *node, owner string, members []string) []StartupItem {
	var out []StartupItem
	seen := map[string]bool{}
	for _, k := range s.children("Item") {
		it := StartupItem{ID: k.attr("id"), Order: -1, StartAction: "powerOn", StopAction: "powerOff"}
		switch {
		case it.ID == "":
			p.warnf("%s: StartupSection item has no ovf:id", owner)
		case !slices.Contains(members, it.ID):
			p.warnf("%s: StartupSection item %q names none of its members", owner, it.ID)
		case seen[it.ID]:
			p.warnf("%s: StartupSection names %q twice", owner, it.ID)
		}
		seen[it.ID] = true
		if v, ok := k.lookupAttr("order"); ok {
			it.Order = p.startupNumber(owner, it.ID, "order", v, -1)
		} else {
			p.warnf("%s: StartupSection item %q has no ovf:order", owner, it.ID)
		}
		if v, ok := k.lookupAttr("startDelay"); ok {
			it.StartDelay = p.startupNumber(owner, it.ID, "startDelay", v, 0)
		}
		if v, ok := k.lookupAttr("stopDelay"); ok {
			it.StopDelay = p.startupNumber(owner, it.ID, "stopDelay", v, 0)
		}
		it.WaitingForGuest = isTrue(k.attr("waitingForGuest"))
		if v := k.attr("startAction"); v != "" {
			it.StartAction = v
		}
		if v := k.attr("stopAction"); v != "" {
			it.StopAction = v
		}
		out = append(out, it)
	}
	return out
}

// startupNumber reads an xs:unsignedShort attribute of a StartupSection
// item, or returns def with a warning.
func (p *parser) startupNumber(owner, id, name, v string, def int) int {
	n, err := parseCount(v)
	if err != nil || n > math.MaxUint16 {
		p.warnf("%s: StartupSection item %q has ovf:%s %q, not a number from 0 to 65535; ignored", owner, id, name, v)
		return def
	}
	return int(n)
}

// allocations reads a ResourceAllocationSection: its items are read as a
// VirtualHardwareSection's are, and their reservation, limit and weight
// kept.
func (p *parser) allocations(s *node, owner string) []Allocation {
	var out []Allocation
	for _, it := range p.sectionItems(s, owner) {
		a := Allocation{
			InstanceID: it.instanceID, ResourceType: it.rt, Name: it.name, Units: it.units,
			Configs: it.configs, Active: it.active,
		}
		scale := int64(1)
		if m, err := parseScale(it.units, unitWords); err == nil {
			a.BaseUnit, scale = "byte", m
		} else if m, err := parseScale(it.units, hertzWords); err == nil {
			a.BaseUnit, scale = "hertz", m
		}
		a.Reservation = p.allocationNumber(owner, it, "Reservation", it.reservation, scale)
		a.Limit = p.allocationNumber(owner, it, "Limit", it.limit, scale)
		a.Shares = p.allocationNumber(owner, it, "Weight", it.weight, 1)
		out = append(out, a)
	}
	return out
}

// allocationNumber is a rasd count times scale, -1 when absent, or with a
// warning when unusable.
func (p *parser) allocationNumber(owner string, it item, field, v string, scale int64) int64 {
	if v == "" {
		return -1
	}
	n, err := parseCount(v)
	switch {
	case err == errOverflow:
		p.warnf("%s: resource allocation item %q: rasd:%s %q is beyond 2^63; ignored", owner, it.instanceID, field, v)
		return -1
	case err != nil:
		p.warnf("%s: resource allocation item %q: rasd:%s %q is not a non-negative integer; ignored", owner, it.instanceID, field, v)
		return -1
	}
	if n, err = mul(n, scale); err != nil {
		p.warnf("%s: resource allocation item %q: rasd:%s %q × %q is beyond 2^63; ignored", owner, it.instanceID, field, v, it.units)
		return -1
	}
	return n
}
