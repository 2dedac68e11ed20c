package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ovfmount/ovfmount/appliance"
)

// infoTable is a disk's partition table in the info report.
type infoTable struct {
	Scheme     string `json:"scheme"` // mbr or gpt
	ID         string `json:"id"`     // the GPT disk GUID, or the MBR signature as sfdisk prints it
	SectorSize int    `json:"sectorSize"`
}

// infoVolume is a partition, logical volume, whole disk or ISO member,
// with its filesystem.
type infoVolume struct {
	Name string `json:"name"` // as under disks/ and files/
	Kind string `json:"kind"` // disk, partition, lv or iso
	Disk string `json:"disk,omitempty"`
	// Start is a partition's offset in its disk, in bytes.
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	Number   int    `json:"number,omitempty"`   // a partition's, as Linux numbers it
	Type     string `json:"type,omitempty"`     // partition type (GPT GUID, MBR code) or LV segment type
	TypeName string `json:"typeName,omitempty"` // the partition type's name
	Label    string `json:"label,omitempty"`    // the GPT partition name
	UUID     string `json:"uuid,omitempty"`     // the partition's or logical volume's UUID
	Bootable bool   `json:"bootable,omitempty"`
	VG       string `json:"vg,omitempty"`
	LV       string `json:"lv,omitempty"`
	// PV says the volume is an LVM physical volume.
	PV bool `json:"lvmPhysicalVolume,omitempty"`
	// View and Files are where the mount shows it ("": nowhere), Note why
	// a logical volume has no view.
	View       string  `json:"view"`
	Files      string  `json:"files"`
	Note       string  `json:"note,omitempty"`
	Filesystem *infoFS `json:"filesystem"`
}

type infoFS struct {
	Type      string `json:"type"`
	Label     string `json:"label"`
	UUID      string `json:"uuid"`
	BlockSize int    `json:"blockSize"`
	Size      int64  `json:"size"`
	// Error is why a filesystem that was recognised is not shown.
	Error string `json:"error,omitempty"`
}

// describeInside adds what the disks hold to the report.
func describeInside(ctx context.Context, r *infoReport, p *appliance.Package) error {
	in, err := p.Inside(ctx)
	if err != nil {
		return err
	}
	for _, d := range in.Disks {
		for i := range r.Disks {
			if d.Table != nil && r.Disks[i].RawView == d.Disk.View {
				r.Disks[i].PartitionTable = &infoTable{Scheme: d.Table.Scheme, ID: d.Table.DiskID, SectorSize: d.Table.SectorSize}
			}
		}
	}
	for _, v := range in.Volumes {
		iv := infoVolume{Name: v.Name, Kind: string(v.Kind), Size: v.Size, View: v.View, Files: v.Files, Note: v.Note, PV: v.PV}
		if v.Disk != nil {
			iv.Disk = v.Disk.View
		}
		if pt := v.Partition; pt != nil {
			iv.Start, iv.Number, iv.Type, iv.TypeName, iv.Label, iv.UUID, iv.Bootable = pt.Start, pt.Number, pt.Type, pt.TypeName, pt.Name, pt.UUID, pt.Bootable
		}
		if v.LV != nil {
			iv.VG, iv.LV, iv.Type, iv.UUID = v.VG.Name, v.LV.Name, v.LV.Type, v.LV.UUID
		}
		if v.FS != nil {
			fi := v.FS.Info()
			iv.Filesystem = &infoFS{Type: fi.Type, Label: fi.Label, UUID: fi.UUID, BlockSize: fi.BlockSize, Size: fi.Size}
		} else if v.FSErr != nil {
			iv.Filesystem = &infoFS{Error: v.FSErr.Error()}
		}
		r.Volumes = append(r.Volumes, iv)
	}
	r.OS = append(r.OS, in.OS...)
	r.Warnings = append(r.Warnings, in.Warnings...)
	return nil
}

// printInside prints the volumes and operating systems.
func printInside(w io.Writer, r *infoReport) {
	if len(r.Volumes) > 0 {
		fmt.Fprintln(w, "Volumes")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tKIND\tSIZE\tTYPE\tFILESYSTEM\tFILES")
		for _, v := range r.Volumes {
			kind := v.Kind
			typ := v.TypeName
			if typ == "" {
				typ = v.Type
			}
			fs := "-"
			switch {
			case v.PV:
				fs = "LVM2 physical volume"
			case v.Filesystem != nil && v.Filesystem.Error != "":
				fs = "unreadable: " + v.Filesystem.Error
			case v.Filesystem != nil:
				fs = v.Filesystem.Type
				if v.Filesystem.Label != "" {
					fs += fmt.Sprintf(" %q", v.Filesystem.Label)
				}
				if v.Filesystem.UUID != "" {
					fs += " " + v.Filesystem.UUID
				}
			case v.Note != "":
				fs = "no view: " + v.Note
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", v.Name, kind, formatBytes(v.Size), orDash(typ), fs, orDash(v.Files))
		}
		tw.Flush()
	}
	for _, o := range r.OS {
		desc := o.Name
		if o.Version != "" && !strings.Contains(desc, o.Version) {
			desc += " " + o.Version
		}
		if o.DisplayVersion != "" {
			desc += " " + o.DisplayVersion
		}
		if o.Build != "" {
			desc += " build " + o.Build
		}
		fmt.Fprintf(w, "Guest OS  %s on %s (%s)\n", desc, o.Volume, orDash(o.Distro))
		if o.Hostname != "" {
			fmt.Fprintf(w, "  Hostname  %s\n", o.Hostname)
		}
		if o.Arch != "" {
			fmt.Fprintf(w, "  Arch      %s\n", o.Arch)
		}
		if len(o.Kernels) > 0 {
			var ks []string
			for _, k := range o.Kernels {
				ks = append(ks, k.Version)
			}
			fmt.Fprintf(w, "  Kernels   %s\n", strings.Join(ks, ", "))
		}
		for _, m := range o.Mounts {
			vol := ""
			if m.Volume != "" {
				vol = ", volume " + m.Volume
			}
			fmt.Fprintf(w, "  Mounts    %s on %s (%s%s)\n", m.Spec, m.Path, orDash(m.Type), vol)
		}
	}
}
