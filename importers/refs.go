package importers

import (
	"fmt"
	"strings"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/ova"
)

// references checks the References against the package: every file
// present, ovf:size right, compression and chunking each importer takes,
// and no file left over.
func (c *checker) references() {
	d := c.p.Descriptor
	if d == nil || d.Env == nil {
		return
	}
	byID := map[string]*appliance.File{}
	for _, f := range c.p.Files {
		byID[f.Ref.ID] = f
	}
	disk := map[string]bool{}
	for _, k := range d.Env.Disks {
		if k.FileRef != "" {
			disk[k.FileRef] = true
		}
	}
	for _, ref := range d.Env.Files {
		subject := fmt.Sprintf("File %s (%s)", ref.ID, ref.Href)
		// What the descriptor asks of the importer holds whether or not
		// the file is there.
		c.compression(ref.Compression, subject)
		f := byID[ref.ID]
		if ref.ChunkSize > 0 {
			c.chunks(ref.Href, subject, ref.ChunkSize, f)
		}
		if f == nil {
			c.missing(ref.Href, subject, disk[ref.ID])
			continue
		}
		if ref.Size >= 0 && ref.Size != f.StoredSize() {
			c.add(breach{rule: "size-mismatch", subject: subject,
				message: fmt.Sprintf("ovf:size says %d bytes, the package stores %d", ref.Size, f.StoredSize()),
				fix:     fmt.Sprintf("set ovf:size=\"%d\" on the File (and update the descriptor's manifest line)", f.StoredSize())})
		}
	}
	c.unreferenced()
}

// chunks reports a file split with ovf:chunkSize. With one chunk only,
// virt-v2v's pick of the highest-numbered chunk is the whole file, and
// only Proxmox and VirtualBox (which look for the href itself) remain.
func (c *checker) chunks(href, subject string, size int64, f *appliance.File) {
	b := breach{rule: "chunk-size", subject: subject,
		message: fmt.Sprintf("the file is split with ovf:chunkSize=%d", size),
		fix:     "join the chunks (cat " + href + ".0* > " + href + ") and drop ovf:chunkSize"}
	if f != nil {
		b.message = fmt.Sprintf("the file is split into %d chunks of ovf:chunkSize=%d", len(f.Members), size)
		if len(f.Members) < 2 {
			b.only = []Target{Proxmox, VirtualBox}
		}
	}
	c.add(b)
}

// missing reports a referenced file the package lacks. In an OVA every
// href must be a file of the archive; an unpacked package may point at a
// URL.
func (c *checker) missing(href, subject string, isDisk bool) {
	_, local := ova.LocalHref(href)
	if local != nil && c.p.Source != appliance.SourceOVA {
		return // a URL or a path outside the folder: importers fetch or refuse it, beyond this check
	}
	msg := "the file is not in the package"
	if local != nil {
		msg = "the href is not a file inside the archive: " + local.Error()
	}
	b := breach{rule: "reference-missing", subject: subject, message: msg,
		fix: "add " + href + " to the package, or remove its File element (and the Disk that uses it)"}
	if !isDisk {
		// Only a missing disk is known to stop an importer: virt-v2v,
		// Proxmox and oVirt read nothing else, and VirtualBox's stream
		// was not seen to look for other files.
		b.only = []Target{Spec, VSphere}
	}
	c.add(b)
}

// compression checks ovf:compression per importer.
func (c *checker) compression(comp, subject string) {
	v := strings.ToLower(comp)
	switch v {
	case "", "identity":
		return
	case "gzip":
		c.add(breach{rule: "compression", subject: subject, only: []Target{Proxmox},
			message: "the file is gzip-compressed (ovf:compression=\"gzip\"), which Proxmox imports as it is",
			fix:     "store the disk uncompressed (gunzip it and drop ovf:compression), or as a streamOptimized VMDK"})
		return
	}
	c.add(breach{rule: "compression", subject: subject,
		message: fmt.Sprintf("ovf:compression=%q is not gzip or identity", comp),
		fix:     "recompress the file with gzip and set ovf:compression=\"gzip\", or store it uncompressed"})
}

// unreferenced reports archive files that are neither the descriptor, a
// manifest or certificate, nor a referenced file.
func (c *checker) unreferenced() {
	if c.p.Source != appliance.SourceOVA {
		return // a folder's archive holds only what the package took from it
	}
	used := map[*ova.Member]bool{c.p.Descriptor.Member: true}
	for _, m := range append([]*ova.Member{c.p.Manifest, c.p.Cert}, c.p.Foreign...) {
		used[m] = true
	}
	for _, f := range c.p.Files {
		for _, m := range f.Members {
			used[m] = true
		}
	}
	for _, m := range c.p.Archive.Files() {
		if !used[m] {
			c.add(breach{rule: "file-unreferenced", subject: m.Name,
				message: "the file is in the package, but the descriptor's References do not name it",
				fix:     "add a File element for it, or leave it out of the package"})
		}
	}
}
