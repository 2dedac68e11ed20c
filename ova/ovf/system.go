package ovf

import (
	"slices"
	"strconv"
	"strings"
)

// content reads a VirtualSystem or a VirtualSystemCollection and, for a
// collection, everything nested in it; path lists the enclosing
// collections. startup is a StartupSection found outside the collection
// (XenCenter's, in the Envelope), read when the collection has none.
func (p *parser) content(n *node, path []string, startup *node) {
	// Sections that belong to the envelope are accepted here too: some
	// producers put a DiskSection or NetworkSection inside the system.
	for _, k := range n.children("DiskSection") {
		p.disks(k)
	}
	for _, k := range n.children("NetworkSection") {
		p.networks(k)
	}
	if n.kind == "VirtualSystem" {
		p.system(n, path)
		return
	}
	p.collection(n, path, startup)
}

// system reads one VirtualSystem.
func (p *parser) system(n *node, path []string) {
	vs := VirtualSystem{ID: n.attr("id"), Name: n.childText("Name"), Path: slices.Clone(path)}
	if vs.ID == "" {
		p.warnf("VirtualSystem %q has no ovf:id", vs.Name)
	}
	vs.OS = p.operatingSystem(n, vs.ID)
	vs.Product, vs.Properties = p.products(n)
	vs.EULAs = eulas(n)
	vs.Annotation = annotation(n)
	hw := n.children("VirtualHardwareSection")
	if len(hw) == 0 {
		p.warnf("VirtualSystem %q has no VirtualHardwareSection", vs.ID)
	} else {
		p.hardware(&vs, hw[0])
		if len(hw) > 1 {
			p.warnf("VirtualSystem %q: %d more VirtualHardwareSections (other hardware families) ignored", vs.ID, len(hw)-1)
		}
	}
	p.env.Systems = append(p.env.Systems, vs)
}

// operatingSystem reads the OperatingSystemSection.
func (p *parser) operatingSystem(n *node, system string) OS {
	os := OS{ID: -1}
	s := n.child("OperatingSystemSection")
	if s == nil {
		return os
	}
	if v, ok := s.lookupAttr("id"); ok {
		if id, err := strconv.Atoi(v); err == nil && id >= 0 && id <= 65535 {
			os.ID = id
		} else {
			p.warnf("VirtualSystem %q: OperatingSystemSection ovf:id %q is not a CIM OS number", system, v)
		}
	}
	os.Version = s.attr("version")
	os.VMwareType = s.vendorAttr("osType")
	os.Description = s.childText("Description")
	return os
}

// products reads every ProductSection: the first that names a product,
// vendor or version is the Product, and the properties of all are kept.
func (p *parser) products(n *node) (Product, []Property) {
	var (
		prod  Product
		found bool
		props []Property
	)
	for _, s := range n.children("ProductSection") {
		ps := Product{
			Name:        s.childText("Product"),
			Vendor:      s.childText("Vendor"),
			Version:     s.childText("Version"),
			FullVersion: s.childText("FullVersion"),
			ProductURL:  s.childText("ProductUrl"),
			VendorURL:   s.childText("VendorUrl"),
			AppURL:      s.childText("AppUrl"),
			Class:       s.attr("class"),
			Instance:    s.attr("instance"),
		}
		if ps.FullVersion == "" {
			ps.FullVersion = s.childText("Full-version") // OVF 0.9 spelling
		}
		if !found && (ps.Name != "" || ps.Vendor != "" || ps.Version != "") {
			prod, found = ps, true
		}
		category := ""
		for _, k := range s.kids {
			if k.vendor {
				continue
			}
			switch k.kind {
			case "Category":
				category = k.text
			case "Property":
				props = append(props, p.property(k, ps, category))
			}
		}
	}
	p.props = append(p.props, props...)
	return prod, props
}

// property reads one Property. A Value child for the default deployment
// configuration replaces the default value, as a deployer would.
func (p *parser) property(k *node, ps Product, category string) Property {
	prop := Property{
		Key:              k.attr("key"),
		Class:            ps.Class,
		Instance:         ps.Instance,
		Type:             k.attr("type"),
		Value:            k.attr("value"),
		Qualifiers:       k.attr("qualifiers"),
		Label:            k.childText("Label"),
		Description:      k.childText("Description"),
		Category:         category,
		Configuration:    k.attr("configuration"),
		UserConfigurable: isTrue(k.attr("userConfigurable")),
		Password:         isTrue(k.attr("password")),
	}
	if prop.Key == "" {
		p.warnf("ProductSection property %q has no ovf:key", prop.Label)
	}
	for _, v := range k.children("Value") {
		if cfg := v.attr("configuration"); cfg != "" && slices.Contains(strings.Fields(cfg), p.env.DefaultConfiguration) {
			prop.Value = v.attr("value")
		}
	}
	return prop
}

// eulas returns the licence texts of every EulaSection.
func eulas(n *node) []string {
	var out []string
	for _, s := range n.children("EulaSection") {
		for _, l := range s.children("License") {
			out = append(out, l.text)
		}
	}
	return out
}

// annotation returns the AnnotationSection text.
func annotation(n *node) string {
	if s := n.child("AnnotationSection"); s != nil {
		return s.childText("Annotation")
	}
	return ""
}
