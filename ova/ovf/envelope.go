package ovf

import (
	"strconv"
	"strings"
)

const (
	// ovf09Namespace is VMware's pre-DMTF envelope namespace (OVF 0.9).
	ovf09Namespace = "http://www.vmware.com/schema/ovf/1/envelope"
	// dmtfNamespacePrefix is followed by the major version: .../envelope/1.
	dmtfNamespacePrefix = "http://schemas.dmtf.org/ovf/envelope/"
	// newestMajor is the newest OVF major version this reader knows.
	newestMajor = 2
)

// version sets Version and Namespace from the envelope namespace and
// ovf:version. The namespace decides the vocabulary, so where the two
// disagree on the major version the namespace wins. oVirt writes the
// namespace with a trailing slash, which is ignored.
func (p *parser) version(root *node) {
	ns := root.name.Space
	p.env.Namespace = ns
	norm := strings.TrimRight(ns, "/")
	nsVersion := ""
	switch {
	case norm == ovf09Namespace:
		nsVersion = "0.9"
	case strings.HasPrefix(norm, dmtfNamespacePrefix):
		major := strings.TrimPrefix(norm, dmtfNamespacePrefix)
		if n, err := strconv.Atoi(major); err == nil && n > 0 && n < 1000 {
			nsVersion = strconv.Itoa(n) + ".0"
		} else {
			p.warnf("envelope namespace %q has no usable major version", ns)
		}
	case ns == "" || ns == "ovf":
		p.warnf("Envelope is in no namespace; read as OVF")
	default:
		p.warnf("envelope namespace %q is not an OVF namespace; read as OVF", ns)
	}

	attr, has := root.lookupAttr("version")
	switch {
	case has && !isVersion(attr):
		p.warnf("ovf:version %q is not a version number; ignored", attr)
		p.env.Version = nsVersion
	case has && nsVersion != "" && majorOf(attr) != majorOf(nsVersion):
		p.warnf("ovf:version %q disagrees with the envelope namespace (OVF %s); the namespace wins", attr, nsVersion)
		p.env.Version = nsVersion
	case has:
		p.env.Version = attr
	default:
		p.env.Version = nsVersion
	}
	if n, err := strconv.Atoi(majorOf(p.env.Version)); err == nil && n > newestMajor {
		p.warnf("OVF %s is newer than this reader knows (up to %d.x); read as %d.x, best effort", p.env.Version, newestMajor, newestMajor)
	}
}

func isVersion(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return false
		}
	}
	return true
}

func majorOf(v string) string {
	major, _, _ := strings.Cut(v, ".")
	return major
}

// references reads References/File.
func (p *parser) references(n *node) {
	for _, f := range n.children("File") {
		file := File{ID: f.attr("id"), Href: f.attr("href"), Size: -1, Compression: f.attr("compression")}
		if file.ID == "" {
			p.warnf("File %q has no ovf:id", file.Href)
		}
		if problem := checkHref(file.Href); problem != "" {
			p.warnf("File %q: href %q %s", file.ID, file.Href, problem)
		}
		if s, ok := f.lookupAttr("size"); ok {
			if v, err := parseCount(s); err == nil {
				file.Size = v
			} else {
				p.warnf("File %q: ovf:size %q is %v; ignored", file.ID, s, err)
			}
		}
		if s, ok := f.lookupAttr("chunkSize"); ok {
			if v, err := parseCount(s); err == nil && v > 0 {
				file.ChunkSize = v
			} else {
				p.warnf("File %q: ovf:chunkSize %q is not a positive integer; ignored", file.ID, s)
			}
		}
		switch file.Compression {
		case "", "gzip", "identity":
		default:
			p.warnf("File %q: ovf:compression %q is neither gzip nor identity", file.ID, file.Compression)
		}
		p.env.Files = append(p.env.Files, file)
	}
}

// disks reads DiskSection/Disk. Capacities are computed in resolveDisks,
// once every property a ${name} capacity may name has been read.
func (p *parser) disks(n *node) {
	for _, d := range n.children("Disk") {
		disk := Disk{
			ID:            d.attr("diskId"),
			FileRef:       d.attr("fileRef"),
			Format:        d.attr("format"),
			ParentRef:     d.attr("parentRef"),
			CapacityRaw:   d.attr("capacity"),
			Units:         d.attr("capacityAllocationUnits"),
			Capacity:      -1,
			PopulatedSize: -1,
		}
		if disk.ID == "" {
			p.warnf("Disk with fileRef %q has no ovf:diskId", disk.FileRef)
		}
		if s, ok := d.lookupAttr("populatedSize"); ok {
			if v, err := parseCount(s); err == nil {
				disk.PopulatedSize = v
			} else {
				p.warnf("Disk %q: ovf:populatedSize %q is %v; ignored", disk.ID, s, err)
			}
		}
		p.env.Disks = append(p.env.Disks, disk)
	}
}

// networks reads NetworkSection/Network.
func (p *parser) networks(n *node) {
	for _, nw := range n.children("Network") {
		net := Network{Name: nw.attr("name"), Description: nw.childText("Description")}
		if net.Name == "" {
			p.warnf("Network has no ovf:name")
		}
		p.env.Networks = append(p.env.Networks, net)
	}
}

// deploymentOptions finds DeploymentOptionSection in the envelope or in
// any system or collection (producers disagree on where it goes) and picks
// the default: the one marked ovf:default="true", else the first.
func (p *parser) deploymentOptions(n *node) {
	for _, k := range n.kids {
		if k.vendor {
			continue
		}
		switch k.kind {
		case "VirtualSystem", "VirtualSystemCollection":
			p.deploymentOptions(k)
		case "DeploymentOptionSection":
			for _, c := range k.children("Configuration") {
				opt := DeploymentOption{ID: c.attr("id"), Label: c.childText("Label"), Description: c.childText("Description")}
				if opt.ID == "" {
					p.warnf("deployment option %q has no ovf:id; ignored", opt.Label)
					continue
				}
				if p.configs[opt.ID] {
					p.warnf("deployment option %q declared twice", opt.ID)
					continue
				}
				p.configs[opt.ID] = true
				if isTrue(c.attr("default")) {
					if p.env.DefaultConfiguration == "" {
						p.env.DefaultConfiguration = opt.ID
						opt.Default = true
					} else {
						p.warnf("deployment options %q and %q are both marked default; the first wins", p.env.DefaultConfiguration, opt.ID)
					}
				}
				p.env.DeploymentOptions = append(p.env.DeploymentOptions, opt)
			}
		}
	}
	if n.kind == "Envelope" && p.env.DefaultConfiguration == "" && len(p.env.DeploymentOptions) > 0 {
		p.env.DeploymentOptions[0].Default = true
		p.env.DefaultConfiguration = p.env.DeploymentOptions[0].ID
	}
}

// isTrue reads an xs:boolean.
func isTrue(s string) bool {
	return s == "true" || s == "1"
}
