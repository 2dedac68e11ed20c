package importers

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/logical"
)

// ustarMaxSize is the largest size a USTAR header's 11 octal digits hold.
const ustarMaxSize = 1<<33 - 1

// isTar reports whether the package's members come from a tar archive,
// where member order and header formats mean something.
func (c *checker) isTar() bool {
	return c.p.Source == appliance.SourceOVA && c.p.Compression != logical.CompressionZip
}

// container checks what holds the package: a plain tar, or a folder.
func (c *checker) container() {
	switch comp := c.p.Compression; comp {
	case logical.CompressionNone:
	case logical.CompressionZip:
		c.add(breach{rule: "archive-container", subject: path.Base(c.p.Name),
			message: "the package is a zip archive, not a tar (OVA)",
			fix:     "repack the files as a tar: tar -cf NAME.ova DESCRIPTOR.ovf [MANIFEST.mf] FILES...",
			only:    []Target{Spec, VSphere, VirtualBox, Proxmox, OVirt}}) // virt-v2v reads zip
	default:
		b := breach{rule: "archive-container", subject: path.Base(c.p.Name),
			message: fmt.Sprintf("the whole OVA is %s-compressed", comp),
			fix:     "ship the plain tar: decompress it, and compress disks inside with ovf:compression=\"gzip\" or streamOptimized VMDKs instead"}
		if comp == logical.CompressionGzip || comp == logical.CompressionXZ {
			b.only = []Target{Spec, VSphere, VirtualBox} // virt-v2v reads tar.gz and tar.xz; Proxmox's GNU tar too
		} else {
			b.only = []Target{Spec, VSphere, VirtualBox, VirtV2V, OVirt}
		}
		c.add(b)
	}
}

// tarFiles lists the regular files of the tar in archive order.
func (c *checker) tarFiles() []*ova.Member {
	var ms []*ova.Member
	for _, m := range c.p.Archive.Files() {
		if m.HeaderOffset >= 0 {
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].HeaderOffset < ms[j].HeaderOffset })
	return ms
}

// order checks the member order DSP0243 §5.3 sets, which streaming
// importers rely on.
func (c *checker) order() {
	if !c.isTar() || c.p.Descriptor == nil {
		return
	}
	ms := c.tarFiles()
	if len(ms) == 0 {
		return
	}
	desc := c.p.Descriptor.Member
	pos := map[*ova.Member]int{}
	for i, m := range ms {
		pos[m] = i
	}
	if ms[0] != desc {
		c.add(breach{rule: "descriptor-first", subject: desc.Name,
			message: fmt.Sprintf("the descriptor is member %d; the first is %s", pos[desc]+1, ms[0].Name),
			fix:     "repack with the descriptor first: tar -cf NAME.ova " + desc.Name + " [manifest] [certificate] files in References order"})
	}
	c.metadataOrder(ms, pos)
	c.referencesOrder(pos)
}

// metadataOrder checks that the manifest and certificate come right
// after the descriptor, or (OVF 2.x) both at the end.
func (c *checker) metadataOrder(ms []*ova.Member, pos map[*ova.Member]int) {
	var meta []*ova.Member
	for _, m := range []*ova.Member{c.p.Manifest, c.p.Cert} {
		if m != nil && m.HeaderOffset >= 0 {
			meta = append(meta, m)
		}
	}
	if len(meta) == 0 {
		return
	}
	d := pos[c.p.Descriptor.Member]
	afterDesc, atEnd := true, true
	for i, m := range meta {
		if pos[m] != d+1+i {
			afterDesc = false
		}
		if pos[m] != len(ms)-len(meta)+i {
			atEnd = false
		}
	}
	v2 := false
	if env := c.p.Descriptor.Env; env != nil {
		v2 = strings.HasPrefix(env.Version, "2")
	}
	if afterDesc || atEnd && v2 {
		return
	}
	names := make([]string, len(meta))
	for i, m := range meta {
		names[i] = fmt.Sprintf("%s (member %d)", m.Name, pos[m]+1)
	}
	msg := "the manifest and certificate are not right after the descriptor"
	if v2 {
		msg += " nor both at the end"
	} else if atEnd {
		msg += "; only OVF 2.x lets them be at the end"
	}
	c.add(breach{rule: "manifest-cert-order", subject: meta[0].Name, message: msg + ": " + strings.Join(names, ", "),
		fix: "repack: descriptor, manifest, certificate, then the files in References order"})
}

// referencesOrder checks that the referenced files' members come in
// References order.
func (c *checker) referencesOrder(pos map[*ova.Member]int) {
	last, lastName := -1, ""
	for _, f := range c.p.Files {
		for _, m := range f.Members {
			p, ok := pos[m]
			if !ok {
				continue
			}
			if p < last {
				c.add(breach{rule: "references-order", subject: m.Name,
					message: fmt.Sprintf("%s (member %d) comes before %s (member %d), against the References order", m.Name, p+1, lastName, last+1),
					fix:     "repack the files in the order the descriptor's References list them"})
				return
			}
			last, lastName = p, m.Name
		}
	}
}

// tar checks each member's header against USTAR and what each importer's
// tar reader takes.
func (c *checker) tar() {
	if !c.isTar() {
		return
	}
	for _, m := range c.tarFiles() {
		h, ok := m.TarHeader()
		if !ok {
			continue
		}
		if m.Size > ustarMaxSize {
			how := "a GNU base-256 size field"
			if h.Pax() {
				how = "a pax size record"
			}
			c.add(breach{rule: "tar-size-8gib", subject: m.Name,
				message: fmt.Sprintf("%s is %d bytes, more than a USTAR header holds (8 GiB - 1); the archive uses %s", m.Name, m.Size, how),
				fix:     "compress the disk (a streamOptimized VMDK, or ovf:compression=\"gzip\") or split it with ovf:chunkSize so each member stays under 8 GiB"})
		}
		if h.GNULongName || !fitsUSTAR(h.RawName) {
			c.add(breach{rule: "tar-long-name", subject: m.Name,
				message: fmt.Sprintf("the member name %q (%d bytes) does not fit a USTAR header", h.RawName, len(h.RawName)),
				fix:     "rename the file to at most 100 bytes (and its href and manifest line with it)"})
		}
		if h.Pax() {
			c.add(breach{rule: "tar-pax-header", subject: m.Name,
				message: fmt.Sprintf("%s is preceded by a pax header (%s)", m.Name, paxWhat(h)),
				fix:     "repack in USTAR or GNU format (GNU tar --format=gnu, Python tarfile.GNU_FORMAT), without pax headers"})
		}
		if h.GNUSparse {
			c.add(breach{rule: "tar-gnu-sparse", subject: m.Name,
				message: fmt.Sprintf("%s is stored as a GNU sparse file", m.Name),
				fix:     "repack without --sparse (tar -S), or convert the disk to a streamOptimized VMDK"})
		}
	}
}

func paxWhat(h *ova.TarHeader) string {
	var parts []string
	if len(h.PaxKeys) > 0 {
		parts = append(parts, "records "+strings.Join(h.PaxKeys, ", "))
	}
	if h.PaxGlobal {
		parts = append(parts, "a global header")
	}
	return strings.Join(parts, "; ")
}

func hasKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// fitsUSTAR reports whether a name fits USTAR's 100-byte name field, or
// its 155-byte prefix and 100-byte name split at a slash.
func fitsUSTAR(name string) bool {
	if len(name) <= 100 {
		return true
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' && i <= 155 && len(name)-i-1 <= 100 && len(name)-i-1 > 0 {
			return true
		}
	}
	return false
}
