package importers

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/ovfmount/ovfmount/ova/ovf"
)

// proxmoxName is pve-storage 9.1.7's OVA_CONTENT_RE_1: a disk file
// beside the descriptor, named by its format.
var proxmoxName = regexp.MustCompile(`^[ a-zA-Z0-9\-.+=_]+\.(qcow2|raw|vmdk)$`)

// family is the first word of a disk's detected format ("vmdk", "qcow2",
// "vhd", "vhdx", "raw"), or "" when the image could not be read.
func family(format string) string {
	f, _, _ := strings.Cut(format, " ")
	switch f {
	case "vmdk", "qcow2", "vhd", "vhdx", "raw":
		return f
	}
	return ""
}

// disks checks each disk's format against the importers and its capacity
// against its header.
func (c *checker) disks() {
	for _, k := range c.p.Disks {
		if k.Decl == nil || k.File == nil {
			continue // a disk the descriptor does not name, a blank disk, or an absent file (reference-missing)
		}
		subject := fmt.Sprintf("Disk %s (%s)", k.ID, k.Href)
		fam := family(k.Format)
		if fam == "" {
			continue // unreadable: info and verify say why; nothing to compare
		}
		if fam != "vmdk" {
			c.add(breach{rule: "disk-format", subject: subject, only: []Target{VSphere, VirtualBox},
				message: fmt.Sprintf("the disk is %s, not VMDK", k.Format),
				fix:     fmt.Sprintf("convert it: qemu-img convert -O vmdk -o subformat=streamOptimized %s %s (then update its File and manifest line)", k.Href, convertedName(k.Href))})
		} else if !strings.Contains(k.Format, "streamOptimized") {
			c.add(breach{rule: "vmdk-subformat", subject: subject,
				message: fmt.Sprintf("the disk is %s, not streamOptimized", k.Format),
				fix:     fmt.Sprintf("convert it: qemu-img convert -O vmdk -o subformat=streamOptimized %s %s (then update its File and manifest line)", k.Href, convertedName(k.Href))})
		}
		c.proxmoxDisk(subject, k.Href, fam)
		if k.Decl.Capacity >= 0 && k.Size >= 0 && k.Decl.Capacity != k.Size {
			c.add(breach{rule: "capacity-mismatch", subject: subject,
				message: fmt.Sprintf("ovf:capacity is %d bytes (%s), the image's header says %d", k.Decl.Capacity, capacityText(k.Decl), k.Size),
				fix:     fmt.Sprintf("set ovf:capacity=\"%d\" and drop ovf:capacityAllocationUnits (or give it in units that divide it)", k.Size)})
		}
	}
}

// proxmoxDisk checks a disk's href against what pve-storage imports from
// an OVA: a plain name beside the descriptor, whose extension is its
// content's format.
func (c *checker) proxmoxDisk(subject, href string, fam string) {
	b := breach{rule: "disk-format", subject: subject, only: []Target{Proxmox}}
	base := strings.TrimPrefix(href, "./")
	switch m := proxmoxName.FindStringSubmatch(base); {
	case m == nil:
		b.message = fmt.Sprintf("Proxmox imports only disks named NAME.vmdk, NAME.qcow2 or NAME.raw beside the descriptor, not %q", href)
		b.fix = "rename the disk (letters, digits, blanks and -.+=_ only, no folder) with the extension of its format"
	case m[1] != fam:
		b.message = fmt.Sprintf("the file is named .%s, but its content is %s", m[1], fam)
		b.fix = "rename it to the extension of its format, or convert it to the format its name says"
	default:
		return
	}
	c.add(b)
}

// convertedName names the VMDK a conversion of href writes: href with
// .vmdk for its extension, never href itself.
func convertedName(href string) string {
	base := strings.TrimSuffix(path.Base(href), path.Ext(href))
	if out := base + ".vmdk"; out != path.Base(href) {
		return out
	}
	return base + "-stream.vmdk"
}

func capacityText(d *ovf.Disk) string {
	if d.Units == "" {
		return d.CapacityRaw
	}
	return d.CapacityRaw + " × " + d.Units
}
