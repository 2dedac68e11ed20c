package appliance

import (
	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/vdisk"
)

// build decides an OVA's package from its index.
func build(in Input, opts Options, src Source, a *ova.Archive) (*Package, error) {
	p := &Package{Name: in.Name, Source: src, Archive: a, modTime: in.ModTime, chainsOff: opts.NoDiskChain}
	for _, w := range a.Warnings() {
		p.warn("%s", w.String())
	}
	d, err := p.chooseDescriptor(a, opts.Descriptor)
	if err != nil {
		return nil, err
	}
	if d == nil {
		p.warn("the package has no descriptor (.ovf), so no manifest either: its disks are found by their magic bytes only, and nothing can be verified")
	} else {
		p.parseDescriptor(d)
		var names []string
		for _, m := range a.Files() {
			names = append(names, m.Name)
		}
		mf, lenient, cert := p.metadataNames(d.Name, names, len(a.FilesWithSuffix(".ovf")) == 1)
		p.Manifest, p.ManifestLenient, p.Cert = fileNamed(a, mf), lenient, fileNamed(a, cert)
	}
	p.Foreign = foreign(a, p.Manifest, p.Cert)
	p.resolveFiles(archiveLookup(a))
	p.diskCandidates(a.Files())
	cache := cacheOf(opts)
	for _, k := range p.Disks {
		if k.File == nil || !k.File.Gzip {
			p.probe(k, cache, p.archiveResolver())
		}
	}
	return p.finish(in, opts, cache)
}

// openFolder decides the package of an unpacked package's folder, or of a
// loose disk image: it takes from the folder only the files that belong to
// the package.
func openFolder(in Input, opts Options, src Source) (*Package, error) {
	f, err := ova.OpenFolder(in.Folder)
	if err != nil {
		return nil, err
	}
	p := &Package{Name: in.Name, Source: src, modTime: in.ModTime, chainsOff: opts.NoDiskChain}
	first, err := f.Add(in.Base)
	if err != nil {
		f.Close()
		return nil, err
	}
	if src == SourceFolder {
		if opts.Descriptor != "" {
			f.Close()
			return nil, &NoSuchDescriptorError{Name: opts.Descriptor, Have: []string{in.Base}}
		}
		p.parseDescriptor(first)
		if err := p.Descriptor.Err; err != nil {
			// The user named this file as the package's descriptor: a
			// descriptor that does not parse is no package at all.
			f.Close()
			return nil, &NotPackageError{Name: in.Name, What: descriptorFailure(err)}
		}
		names, err := f.Names()
		if err != nil {
			f.Close()
			return nil, err
		}
		descs, _ := f.NamesWithSuffix(".ovf")
		mf, lenient, cert := p.metadataNames(first.Name, names, len(descs) == 1)
		p.ManifestLenient = lenient
		for _, n := range []string{mf, cert} {
			if n == "" {
				continue
			}
			m, err := f.Add(n)
			if err != nil {
				p.warn("%s: %v", n, err)
				continue
			}
			if n == mf {
				p.Manifest = m
			} else {
				p.Cert = m
			}
		}
		p.resolveFiles(func(name string) (*ova.Member, error) { return f.Add(name) })
	}
	// The archive is the files added so far, and the extents the disks
	// name, which only opening them tells.
	members := []*ova.Member{first}
	for _, f := range p.Files {
		members = append(members, f.Members...)
	}
	p.diskCandidates(members)
	cache := cacheOf(opts)
	for _, k := range p.Disks {
		if k.File == nil || !k.File.Gzip {
			p.probe(k, cache, folderResolver(f))
		}
	}
	p.Archive = f.Archive()
	for _, w := range p.Archive.Warnings() {
		p.warn("%s", w.String())
	}
	return p.finish(in, opts, cache)
}

// finish builds the checks, opens gzip files, names the views and lays
// out the plan.
func (p *Package) finish(in Input, opts Options, cache *vdisk.Cache) (*Package, error) {
	// The archive's identity names what later runs reuse: one SHA-256
	// over the index, for the chunk tables and the gzip indexes alike.
	identity := p.Archive.Identity(in.Identity)
	p.log, p.logIn = opts.Log, opts.LogInside
	iopts := opts.Integrity
	iopts.Identity = identity
	var desc *ova.Member
	if p.Descriptor != nil {
		desc = p.Descriptor.Member
	}
	p.Checks = integrity.New(integrity.Package{Archive: p.Archive, Descriptor: desc, Manifest: p.Manifest, Cert: p.Cert,
		Foreign: p.Foreign}, iopts)
	for _, w := range p.Checks.Warnings() {
		p.warn("%s", w)
	}
	if err := p.openGzip(opts, identity); err != nil {
		p.Close()
		return nil, err
	}
	for _, k := range p.Disks {
		if k.File != nil && k.File.Gzip {
			p.probe(k, cache, nil)
		}
	}
	p.assignViews()
	p.plan(cache)
	return p, nil
}

// fileNamed is the archive's file of that name; nil for "" (which would
// name the root).
func fileNamed(a *ova.Archive, name string) *ova.Member {
	if name == "" {
		return nil
	}
	m, _ := a.Lookup(name)
	return m
}

func cacheOf(opts Options) *vdisk.Cache {
	if opts.Cache != nil {
		return opts.Cache
	}
	return vdisk.NewCache(4<<20, 0)
}
