package ovf

import (
	"fmt"
	"strings"
)

// DiskFiles joins each Disk with the File holding its image, in DiskSection
// order: what the mount offers as raw disk views. Disks without a fileRef
// (blank disks to be created) or whose fileRef names no File are left out;
// Parse has warned about the latter.
func (e *Envelope) DiskFiles() []DiskFile {
	files := make(map[string]File, len(e.Files))
	for _, f := range e.Files {
		if _, dup := files[f.ID]; !dup {
			files[f.ID] = f
		}
	}
	var out []DiskFile
	for _, d := range e.Disks {
		if f, ok := files[d.FileRef]; ok && d.FileRef != "" {
			out = append(out, DiskFile{Disk: d, File: f})
		}
	}
	return out
}

// FormatName names the disk format an ovf:format URI means ("vmdk", "vhd",
// "vhdx", "qcow2"), or "" when it says nothing known. URIs are matched by
// their meaningful part, since producers spell them in many ways and with
// typos; they are hints only, and the image's magic bytes decide.
func FormatName(uri string) string {
	u := strings.ToLower(uri)
	switch {
	case strings.Contains(u, "vmdk"):
		return "vmdk"
	case strings.Contains(u, "vhdx"):
		return "vhdx"
	case strings.Contains(u, "vhdspec") || strings.Contains(u, "137171") || strings.Contains(u, "vhd"):
		return "vhd"
	case strings.Contains(u, "qcow"):
		return "qcow2"
	}
	return ""
}

// CheckDisk compares a Disk with what its image's header says (its format
// description, e.g. "vmdk streamOptimized v3", or "raw", and its virtual
// size), and describes each disagreement. Both are common (oVirt labels
// raw disks as VMDK; producers write stale capacities), so they are
// reported, never fatal.
func CheckDisk(d Disk, format string, size int64) []string {
	var out []string
	if want := FormatName(d.Format); want != "" && !strings.HasPrefix(format, want) {
		out = append(out, fmt.Sprintf("disk %s: ovf:format says %s, but the image is %s", d.ID, want, format))
	}
	if d.Capacity >= 0 && d.Capacity != size {
		out = append(out, fmt.Sprintf("disk %s: ovf:capacity is %d bytes, the image's header says %d", d.ID, d.Capacity, size))
	}
	return out
}
