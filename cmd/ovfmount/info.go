package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/guestfs/inspect"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/ova/ovf"
)

// infoReport is what `ovfmount info` says, and its --json schema
// (documented in the README).
type infoReport struct {
	Archive string `json:"archive"`
	Source  string `json:"source"` // ova, folder or disk
	// Compression is how the whole archive is compressed: gzip, xz, zstd
	// or zip ("" for a plain tar).
	Compression    string           `json:"compression"`
	Descriptor     string           `json:"descriptor"`
	OVFVersion     string           `json:"ovfVersion"`
	VirtualSystems []infoSystem     `json:"virtualSystems"`
	Collections    []ovf.Collection `json:"collections"`
	// DeploymentOptions are the configurations the descriptor offers; a
	// system's cpus and memoryBytes are for its configuration.
	DeploymentOptions []ovf.DeploymentOption `json:"deploymentOptions"`
	Disks             []infoDisk             `json:"disks"`
	Files             []infoFile             `json:"files"`
	Networks          []ovf.Network          `json:"networks"`
	Manifests         []string               `json:"manifests"`
	Certificate       string                 `json:"certificate"`
	Foreign           []string               `json:"foreign"`
	Signature         verifySignature        `json:"signature"`
	Mount             []mountEntry           `json:"mount"`
	// Volumes and OS are what the disks hold (see infoinside.go).
	Volumes  []infoVolume `json:"volumes"`
	OS       []inspect.OS `json:"operatingSystems"`
	Warnings []string     `json:"warnings"`
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
	Path        []string       `json:"path,omitempty"` // the vApps it belongs to, outermost first
	// Configuration is the deployment option cpus and memoryBytes are for
	// ("" when the descriptor offers none); ByConfiguration gives each
	// option's.
	Configuration   string       `json:"configuration,omitempty"`
	ByConfiguration []ovf.Sizing `json:"byConfiguration,omitempty"`
}

type infoDisk struct {
	ID                 string `json:"id"`
	File               string `json:"file"`           // the href, or the member of a disk found by its magic bytes
	Format             string `json:"format"`         // detected from the image, or why there is none
	DeclaredFormat     string `json:"declaredFormat"` // ovf:format as written
	CapacityBytes      int64  `json:"capacityBytes"`  // the image header's virtual size; the descriptor's when unreadable
	DeclaredCapacity   int64  `json:"declaredCapacityBytes"`
	PopulatedSizeBytes int64  `json:"populatedSizeBytes"`
	RawView            string `json:"rawView"` // where the decoded disk appears when mounted
	// Chain lists the parents the view reads through, nearest first
	// (empty for a disk that stands alone).
	Chain []string `json:"chain"`
	// PartitionTable is the disk's, null when it has none.
	PartitionTable *infoTable `json:"partitionTable"`
}

type infoFile struct {
	Href        string   `json:"href"`
	Size        int64    `json:"size"` // ovf:size as declared, -1 when absent
	StoredSize  int64    `json:"storedSize"`
	Compression string   `json:"compression"`
	ChunkSize   int64    `json:"chunkSize"`
	Members     []string `json:"members"`
}

// mountEntry is one path the mount shows, and the stored members its
// bytes come from (what verify covers it with).
type mountEntry struct {
	Path    string   `json:"path"`
	Type    string   `json:"type"` // dir, file or symlink
	Role    string   `json:"role"`
	Size    int64    `json:"size"`
	Members []string `json:"members,omitempty"`
}

const infoUsage = `Usage: ovfmount info [flags] ARCHIVE...

Summarises an appliance (an .ova file or URL, an unpacked package's .ovf or
folder, or a loose disk image): product, systems, CPUs, memory, networks,
disks, properties, EULA, manifest and signature, what the mount shows, the
partitions, logical volumes and filesystems inside the disks, the guest
operating systems, and every inconsistency found. It reads the descriptor,
the manifest, the certificate, the disks' headers, partition tables and
volume metadata, and the few guest files that name an OS, so it answers at
once whatever the size of the appliance. It verifies nothing: verify does.

Flags:
%s`

func runInfo(args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	var v verify
	fl := pflag.NewFlagSet("ovfmount info", pflag.ContinueOnError)
	fl.SortFlags = false
	fl.SetOutput(io.Discard)
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	v.flags(fl, false)
	if code, done := parseArchives(fl, args, infoUsage, stdout, stderr); done {
		return code
	}
	srcs, _, err := expandSources(fl.Args(), &v)
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount info: %v\n", err)
		return codeOf(err)
	}
	return eachSource(srcs, stdout, stderr, "ovfmount info", asJSON, func(s source) (any, int, error) {
		r, err := infoOf(s.arg, &v, stderr)
		return r, exitOK, err
	}, func(r any) { printInfo(stdout, r.(*infoReport)) })
}

// infoOf summarises one archive.
func infoOf(arg string, v *verify, stderr io.Writer) (*infoReport, error) {
	pkg, rf, err := openPackage(arg, v, openWith{mode: integrity.Off, log: warnLogger(stderr)})
	if err != nil {
		return nil, err
	}
	defer pkg.Close()
	if rf != nil {
		defer rf.Close()
	}
	r := describe(shownName(arg), pkg)
	if err := describeInside(context.Background(), r, pkg); err != nil {
		return nil, err
	}
	return r, nil
}

func describe(name string, p *appliance.Package) *infoReport {
	r := &infoReport{Archive: name, Source: string(p.Source), Compression: string(p.Compression), VirtualSystems: []infoSystem{}, Collections: []ovf.Collection{},
		DeploymentOptions: []ovf.DeploymentOption{}, Disks: []infoDisk{}, Files: []infoFile{}, Networks: []ovf.Network{},
		Manifests: []string{}, Foreign: []string{}, Volumes: []infoVolume{}, OS: []inspect.OS{},
		Mount: mountEntries(shownEntries(p)), Warnings: append([]string{}, p.Warnings...)}
	r.Signature = signatureOf(p.Checks.Signature())
	if p.Manifest != nil {
		r.Manifests = append(r.Manifests, p.Manifest.Name)
	}
	if p.Cert != nil {
		r.Certificate = p.Cert.Name
	}
	for _, m := range p.Foreign {
		r.Foreign = append(r.Foreign, m.Name)
	}
	for _, k := range p.Disks {
		d := infoDisk{ID: k.ID, File: k.Href, Format: k.Format, CapacityBytes: k.Size, DeclaredCapacity: -1,
			PopulatedSizeBytes: -1, RawView: k.View, Chain: append([]string{}, k.Chain...)}
		if k.Member != nil {
			d.File = k.Member.Name
		}
		if k.Decl != nil {
			d.DeclaredFormat, d.DeclaredCapacity, d.PopulatedSizeBytes = k.Decl.Format, k.Decl.Capacity, k.Decl.PopulatedSize
		}
		r.Disks = append(r.Disks, d)
	}
	if p.Descriptor == nil {
		return r
	}
	r.Descriptor = p.Descriptor.Member.Name
	env := p.Descriptor.Env
	if env == nil {
		return r
	}
	r.OVFVersion = env.Version
	r.Networks = append(r.Networks, env.Networks...)
	r.Collections = append(r.Collections, env.Collections...)
	r.DeploymentOptions = append(r.DeploymentOptions, env.DeploymentOptions...)
	byID := map[string]*appliance.File{}
	for _, f := range p.Files {
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
	for _, s := range env.Systems {
		is := infoSystem{ID: s.ID, Name: s.Name, CPUs: s.CPUs, MemoryBytes: s.MemoryBytes, OS: s.OS, Product: s.Product,
			Firmware: s.Firmware, Disks: []string{}, NICs: s.NICs, Properties: s.Properties, Annotation: s.Annotation, Path: s.Path,
			Configuration: s.Configuration, ByConfiguration: s.ByConfiguration}
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

// shownEntries is what the mount shows once looked into, short of the
// guest filesystems' files: the plan, with the partition and volume views
// and the guest filesystems' roots.
func shownEntries(p *appliance.Package) []*appliance.Entry {
	entries, err := p.AllEntries(context.Background())
	if err != nil {
		return p.Entries // only a cancelled context fails, and this one never ends
	}
	return entries
}

// mountEntries lists what the mount shows, as the package model laid it
// out.
func mountEntries(entries []*appliance.Entry) []mountEntry {
	out := []mountEntry{}
	for _, e := range entries {
		if e.Path == "" {
			continue
		}
		me := mountEntry{Path: e.Path, Role: string(e.Role)}
		switch e.Type {
		case appliance.Dir:
			me.Type = "dir"
		case appliance.Symlink:
			me.Type, me.Size = "symlink", int64(len(e.Target))
		default:
			me.Type, me.Size = "file", e.Content.Size()
			for _, m := range e.Members {
				me.Members = append(me.Members, m.Name)
			}
		}
		out = append(out, me)
	}
	return out
}

// signatureOf is the signature as reports show it: ok, bad or absent,
// with the chain for a valid one.
func signatureOf(sig integrity.Signature) verifySignature {
	s := verifySignature{Status: sig.State, Signer: sig.Signer, Chain: sig.Chain, File: sig.File}
	if sig.State == "ok-untrusted" {
		s.Status = "ok"
	}
	if sig.Err != nil {
		s.Error = sig.Err.Error()
	}
	return s
}

func printInfo(w io.Writer, r *infoReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	switch r.Compression {
	case "":
		line("Archive", r.Archive)
	case "zip":
		line("Archive", r.Archive+" (a zip archive, read through its central directory)")
	default:
		line("Archive", fmt.Sprintf("%s (%s-compressed, read through a seek index)", r.Archive, r.Compression))
	}
	if r.Descriptor != "" || r.Source != string(appliance.SourceDisk) {
		line("Descriptor", fmt.Sprintf("%s (OVF %s)", orDash(r.Descriptor), orDash(r.OVFVersion)))
	}
	for _, c := range r.Collections {
		printCollection(line, c)
	}
	if len(r.DeploymentOptions) > 0 {
		var opts []string
		for _, o := range r.DeploymentOptions {
			opt := o.ID
			if o.Label != "" && o.Label != o.ID {
				opt += " (" + o.Label + ")"
			}
			if o.Default {
				opt += " [default]"
			}
			opts = append(opts, opt)
		}
		line("Deployment", strings.Join(opts, ", "))
	}
	for _, s := range r.VirtualSystems {
		name := s.Name
		if name == "" {
			name = s.ID
		}
		size := fmt.Sprintf("%s: %d CPU(s), %s memory", name, s.CPUs, formatBytes(s.MemoryBytes))
		if s.Configuration != "" {
			size += " (configuration " + s.Configuration + ")"
		}
		line("System", size)
		for _, c := range s.ByConfiguration {
			if c.Configuration != s.Configuration {
				line("  Option", fmt.Sprintf("%s: %d CPU(s), %s memory", c.Configuration, c.CPUs, formatBytes(c.MemoryBytes)))
			}
		}
		if len(s.Path) > 0 {
			line("  In vApp", strings.Join(s.Path, " / "))
		}
		printProduct(line, s.Product)
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
			line("  EULA", firstLine(s.EULA))
		}
		if s.Annotation != "" {
			line("  Annotation", firstLine(s.Annotation))
		}
	}
	if r.Source != string(appliance.SourceDisk) {
		var nets []string
		for _, n := range r.Networks {
			nets = append(nets, n.Name)
		}
		line("Networks", orDash(strings.Join(nets, ", ")))
	}
	manifest := orDash(strings.Join(r.Manifests, ", "))
	if r.Certificate != "" {
		manifest += ", certificate " + r.Certificate
	}
	line("Manifest", manifest)
	s := r.Signature
	switch {
	case s.Status == "ok":
		line("Signature", fmt.Sprintf("valid, %s (chain %s)", s.Signer, s.Chain))
	case s.Status == "bad":
		line("Signature", "INVALID: "+s.Error)
	default:
		line("Signature", s.Status)
	}
	if len(r.Foreign) > 0 {
		line("Foreign", strings.Join(r.Foreign, ", ")+" (another package's: they vouch for nothing here)")
	}
	tw.Flush()
	if len(r.Disks) > 0 {
		fmt.Fprintln(w, "Disks")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tFILE\tFORMAT\tCAPACITY\tPOPULATED\tVIEW")
		for _, d := range r.Disks {
			populated := "-"
			if d.PopulatedSizeBytes >= 0 {
				populated = formatBytes(d.PopulatedSizeBytes)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", orDash(d.ID), orDash(d.File), d.Format, formatBytes(d.CapacityBytes), populated, orDash(d.RawView))
		}
		tw.Flush()
		for _, d := range r.Disks {
			if len(d.Chain) > 0 {
				fmt.Fprintf(w, "  chain of %s: %s <- %s\n", d.File, d.File, strings.Join(d.Chain, " <- "))
			}
		}
	}
	printInside(w, r)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
}

// printCollection shows a vApp: its name, members, product, annotation,
// licence, startup order and resource allocation.
func printCollection(line func(k, v string), c ovf.Collection) {
	name := c.Name
	if name == "" {
		name = c.ID
	}
	line("vApp", fmt.Sprintf("%s: %d member(s): %s", name, len(c.Members), strings.Join(c.Members, ", ")))
	printProduct(line, c.Product)
	if c.Annotation != "" {
		line("  Annotation", firstLine(c.Annotation))
	}
	if len(c.EULAs) > 0 {
		line("  EULA", firstLine(c.EULAs[0]))
	}
	for _, st := range c.Startup {
		order := "unordered"
		if st.Order >= 0 {
			order = fmt.Sprintf("order %d", st.Order)
		}
		what := fmt.Sprintf("%s: %s, %s then wait %ds", st.ID, order, st.StartAction, st.StartDelay)
		if st.WaitingForGuest {
			what += " or until the guest is ready"
		}
		line("  Startup", what+fmt.Sprintf("; stop: %s then wait %ds", st.StopAction, st.StopDelay))
	}
	for _, a := range c.Resources {
		if !a.Active {
			continue
		}
		line("  Resource", strings.TrimSpace(fmt.Sprintf("%s: reservation %s, limit %s, shares %s", orDash(a.Name),
			amount(a.Reservation, a), amount(a.Limit, a), count(a.Shares))))
	}
}

// amount shows a reservation or limit in its unit.
func amount(n int64, a ovf.Allocation) string {
	switch {
	case n < 0:
		return "-"
	case a.BaseUnit == "byte":
		return formatBytes(n)
	case a.BaseUnit == "hertz":
		return fmt.Sprintf("%d MHz", n/1e6)
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", n, a.Units))
}

func count(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func printProduct(line func(k, v string), p ovf.Product) {
	if p.Name != "" || p.Vendor != "" {
		line("  Product", strings.TrimSpace(fmt.Sprintf("%s %s (%s)", p.Name, p.Version, orDash(p.Vendor))))
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return first
}
