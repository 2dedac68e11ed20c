package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/fs"
	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/ovf"
	"github.com/ovfmount/ovfmount/vdisk"
)

// infoReport is what `ovfmount info` says, and its --json schema
// (documented in the README).
type infoReport struct {
	Archive        string          `json:"archive"`
	Descriptor     string          `json:"descriptor"`
	OVFVersion     string          `json:"ovfVersion"`
	VirtualSystems []infoSystem    `json:"virtualSystems"`
	Disks          []infoDisk      `json:"disks"`
	Files          []infoFile      `json:"files"`
	Networks       []ovf.Network   `json:"networks"`
	Manifests      []string        `json:"manifests"`
	Signature      verifySignature `json:"signature"`
	Warnings       []string        `json:"warnings"`
}

type infoSystem struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	CPUs        int            `json:"cpus"`
	MemoryBytes int64          `json:"memoryBytes"`
	OS          ovf.OS         `json:"os"`
	Product     ovf.Product    `json:"product"`
	Firmware    string         `json:"firmware,omitempty"`
	Disks       []string       `json:"disks"`
	NICs        []ovf.NIC      `json:"nics"`
	Properties  []ovf.Property `json:"properties"`
	EULA        string         `json:"eula,omitempty"`
	Annotation  string         `json:"annotation,omitempty"`
}

type infoDisk struct {
	ID                 string `json:"id"`
	File               string `json:"file"`
	Format             string `json:"format"`         // detected from the image, or "raw"
	DeclaredFormat     string `json:"declaredFormat"` // ovf:format as written
	CapacityBytes      int64  `json:"capacityBytes"`  // the image header's virtual size; the descriptor's when unreadable
	DeclaredCapacity   int64  `json:"declaredCapacityBytes"`
	PopulatedSizeBytes int64  `json:"populatedSizeBytes"`
	RawView            string `json:"rawView"` // where the decoded disk appears when mounted
}

type infoFile struct {
	Href        string   `json:"href"`
	Size        int64    `json:"size"` // ovf:size as declared, -1 when absent
	StoredSize  int64    `json:"storedSize"`
	Compression string   `json:"compression"`
	ChunkSize   int64    `json:"chunkSize"`
	Members     []string `json:"members"`
}

const infoUsage = `Usage: ovfmount info [flags] ARCHIVE

Summarises an appliance (an .ova file or URL, or an unpacked package's
.ovf or folder): product, systems, CPUs, memory, networks, disks, properties,
EULA, manifest and signature, and every inconsistency found. It reads the
descriptor, the manifests and the disks' headers only, so it answers at
once whatever the size of the appliance.

Flags:
%s`

func runInfo(args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	var cacheDir, caFile string
	var net remoteFlags
	fl := pflag.NewFlagSet("ovfmount info", pflag.ContinueOnError)
	fl.SetOutput(io.Discard)
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fl.StringVar(&cacheDir, "cache-dir", defaultCacheDir(), "where a mount saved gzip seek indexes, which let info read compressed disks' headers")
	fl.StringVar(&caFile, "ca", "", caHelp)
	net.flags(fl)
	if code, done := parseOneArchive(fl, args, infoUsage, stdout, stderr); done {
		return code
	}
	src, err := openSource(fl.Arg(0), remoteSettings{flags: &net, ca: &caBundle{path: caFile}, cacheDir: cacheDir, log: warnLogger(stderr)})
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount info: %v\n", err)
		return codeOf(err)
	}
	defer src.Close()
	r := describe(shownName(fl.Arg(0)), src.archive, ova.GzipOptions{CacheDir: cacheDir, Source: src.identity()})
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		printInfo(stdout, r)
	}
	return exitOK
}

func describe(name string, a *ova.Archive, gz ova.GzipOptions) *infoReport {
	r := &infoReport{Archive: name, VirtualSystems: []infoSystem{}, Disks: []infoDisk{}, Files: []infoFile{},
		Networks: []ovf.Network{}, Manifests: []string{}, Warnings: []string{}}
	warn := func(s string) { r.Warnings = append(r.Warnings, s) }
	for _, w := range a.Warnings() {
		warn(w.String())
	}
	descs := a.Descriptors()
	switch {
	case len(descs) == 0:
		warn("the package has no descriptor (.ovf)")
		return r
	case len(descs) > 1:
		var names []string
		for _, d := range descs {
			names = append(names, d.Member.Name)
		}
		warn(fmt.Sprintf("the package has %d descriptors (%s); %s is described", len(descs), strings.Join(names, ", "), descs[0].Member.Name))
	}
	d := descs[0]
	r.Descriptor = d.Member.Name
	if d.Err != nil {
		warn(fmt.Sprintf("%s: %v", d.Member.Name, d.Err))
		return r
	}
	env := d.Env
	r.OVFVersion = env.Version
	r.Networks = append(r.Networks, env.Networks...)
	r.Warnings = append(r.Warnings, env.Warnings...)

	in := ova.NewIntegrity(a, ova.IntegrityOptions{Mode: ova.VerifyOff})
	for _, m := range a.FilesWithSuffix(".mf") {
		r.Manifests = append(r.Manifests, m.Name)
	}
	sig := in.Signature()
	r.Signature = verifySignature{Status: sig.State, Signer: sig.Signer, Chain: sig.Chain}
	if sig.State == "ok-untrusted" {
		r.Signature.Status = "ok"
	}
	if sig.Err != nil {
		r.Signature.Error = sig.Err.Error()
	}
	r.Warnings = append(r.Warnings, in.Warnings()...)

	files, warns := ova.ResolveFiles(a, d)
	for _, w := range warns {
		warn(w.String())
	}
	byID := map[string]*ova.LogicalFile{}
	for _, f := range files {
		byID[f.Ref.ID] = f
	}
	for _, ref := range env.Files {
		fi := infoFile{Href: ref.Href, Size: ref.Size, Compression: ref.Compression, ChunkSize: ref.ChunkSize, Members: []string{}}
		if f := byID[ref.ID]; f != nil {
			fi.StoredSize = f.StoredSize()
			for _, m := range f.Members {
				fi.Members = append(fi.Members, m.Name)
			}
		}
		r.Files = append(r.Files, fi)
	}
	folder := fs.DisksFolderOf(a)
	for _, disk := range env.Disks {
		id := infoDisk{ID: disk.ID, DeclaredFormat: disk.Format, CapacityBytes: disk.Capacity, DeclaredCapacity: disk.Capacity,
			PopulatedSizeBytes: disk.PopulatedSize}
		f := byID[disk.FileRef]
		if disk.FileRef == "" {
			id.Format = "none (an empty disk the importer creates)"
		} else if f == nil {
			id.Format = "absent"
		} else {
			id.File = f.Ref.Href
			id.Format, id.CapacityBytes = diskHeader(a, f, disk, gz, warn)
			if id.Format != "" && id.Format != "unreadable" {
				id.RawView = path.Join(folder, f.DecodedName()+".raw")
			}
		}
		r.Disks = append(r.Disks, id)
	}
	for _, s := range env.Systems {
		is := infoSystem{ID: s.ID, Name: s.Name, CPUs: s.CPUs, MemoryBytes: s.MemoryBytes, OS: s.OS, Product: s.Product,
			Firmware: s.Firmware, Disks: []string{}, NICs: s.NICs, Properties: s.Properties, Annotation: s.Annotation}
		if is.NICs == nil {
			is.NICs = []ovf.NIC{}
		}
		if is.Properties == nil {
			is.Properties = []ovf.Property{}
		}
		for _, at := range s.Disks {
			if at.Active && at.DiskID != "" {
				is.Disks = append(is.Disks, at.DiskID)
			}
		}
		if len(s.EULAs) > 0 {
			is.EULA = s.EULAs[0]
		}
		r.VirtualSystems = append(r.VirtualSystems, is)
	}
	return r
}

// diskHeader reads a disk file's header (never its data) for its format
// and virtual size, and reports what disagrees with the descriptor. A gzip
// file's header is read only through a seek index a mount saved: building
// one means decompressing the whole file, and info answers at once.
func diskHeader(a *ova.Archive, f *ova.LogicalFile, disk ovf.Disk, gzopts ova.GzipOptions, warn func(string)) (format string, capacity int64) {
	capacity = disk.Capacity
	st := ova.StoredOf(f.Members, nil)
	r, size := st.Unchecked, st.Size
	if f.Gzip {
		gz := ova.LoadGzip(a, f, st, gzopts)
		if gz == nil {
			return "gzip (its format is read when it is first mounted)", capacity
		}
		r, size = gz.Unchecked, gz.Size()
	}
	if vdisk.Detect(r, size) == vdisk.Unknown {
		format = "raw"
		capacity = size
	} else {
		im, err := vdisk.Open(r, size, vdisk.Options{Name: f.DecodedName(), Cache: vdisk.NewCache(1<<20, 1),
			Resolve: func(name string) (io.ReaderAt, int64, error) {
				if len(f.Members) != 1 || f.Gzip {
					return nil, 0, fmt.Errorf("extent %q: a split or compressed descriptor cannot name extents", name)
				}
				m, err := a.Sibling(f.Members[0], name)
				if err != nil {
					return nil, 0, err
				}
				return m, m.Size, nil
			}})
		if err != nil {
			warn(fmt.Sprintf("disk %s: %v", disk.ID, err))
			return "unreadable", capacity
		}
		format, capacity = im.Format(), im.Size()
	}
	for _, w := range ovf.CheckDisk(disk, format, capacity) {
		warn(w)
	}
	return format, capacity
}

func printInfo(w io.Writer, r *infoReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	line("Archive", r.Archive)
	line("Descriptor", fmt.Sprintf("%s (OVF %s)", orDash(r.Descriptor), orDash(r.OVFVersion)))
	for _, s := range r.VirtualSystems {
		name := s.Name
		if name == "" {
			name = s.ID
		}
		line("System", fmt.Sprintf("%s: %d CPU(s), %s memory", name, s.CPUs, bytesIEC(s.MemoryBytes)))
		if p := s.Product; p.Name != "" || p.Vendor != "" {
			line("  Product", strings.TrimSpace(fmt.Sprintf("%s %s (%s)", p.Name, p.Version, orDash(p.Vendor))))
		}
		if os := s.OS.Description; os != "" || s.OS.VMwareType != "" {
			line("  OS", strings.TrimSpace(os+" "+s.OS.VMwareType))
		}
		if s.Firmware != "" {
			line("  Firmware", s.Firmware)
		}
		for _, n := range s.NICs {
			if n.Active {
				line("  NIC", strings.TrimSpace(fmt.Sprintf("%s on %q", orDash(n.SubType), n.Network)))
			}
		}
		for _, p := range s.Properties {
			v := p.Value
			if p.Password {
				v = "(password)"
			}
			line("  Property", fmt.Sprintf("%s = %s", p.Key, v))
		}
		if s.EULA != "" {
			first, _, _ := strings.Cut(strings.TrimSpace(s.EULA), "\n")
			line("  EULA", first)
		}
	}
	var nets []string
	for _, n := range r.Networks {
		nets = append(nets, n.Name)
	}
	line("Networks", orDash(strings.Join(nets, ", ")))
	for _, d := range r.Disks {
		v := fmt.Sprintf("%s  %s  %s capacity", orDash(d.File), d.Format, bytesIEC(d.CapacityBytes))
		if d.PopulatedSizeBytes >= 0 {
			v += ", " + bytesIEC(d.PopulatedSizeBytes) + " populated"
		}
		if d.RawView != "" {
			v += "  -> " + d.RawView
		}
		line("Disk "+d.ID, v)
	}
	line("Manifest", orDash(strings.Join(r.Manifests, ", ")))
	s := r.Signature
	switch {
	case s.Status == "ok":
		line("Signature", fmt.Sprintf("valid, %s (chain %s)", s.Signer, s.Chain))
	case s.Status == "bad":
		line("Signature", "INVALID: "+s.Error)
	default:
		line("Signature", s.Status)
	}
	for _, warn := range r.Warnings {
		line("Warning", warn)
	}
}

func bytesIEC(n int64) string {
	if n < 0 {
		return "unknown"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
