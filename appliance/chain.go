package appliance

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/ova/logical"
	"github.com/ovfmount/ovfmount/vdisk"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// A child disk (a VMDK delta, a QCOW2 overlay, a VHD, VHDX or VDI
// differencing disk) reads through its parent, which must be one of the
// package's own files. Its view is the whole chain flattened; each layer
// that is a disk of the package keeps its own view too.

// parentBase is the file name a child gives its parent, without the
// folders: children store host paths (C:\VMs\base.vhd,
// /vmfs/volumes/ds/vm/base.vmdk, ../images/base.qcow2) that mean nothing
// inside a package, so only the last element is looked up, beside the
// child first. "" when there is none.
func parentBase(name string) string {
	b := name[strings.LastIndexAny(name, `/\`)+1:]
	if b == "." || b == ".." {
		return ""
	}
	return b
}

// chainSource is a parent candidate and the members its view reads.
type chainSource struct {
	src     vdisk.Source
	members []*ova.Member
	member  *ova.Member // the file itself, when it is one stored member
}

// parents is vdisk.Options.Parents for disk k, or nil where chains are
// off.
func (p *Package) parents(k *Disk, checks *integrity.Checks, tried map[string]*chainSource) func(string, *blockmap.Parent) ([]vdisk.Source, error) {
	if p.chainsOff {
		return nil
	}
	resolve := k.resolve
	if checks != nil && resolve != nil {
		// A folder's files can be added only until its archive is
		// built; the probe added the chain's, and the archive finds
		// them beside each other.
		resolve = p.archiveResolver()
	}
	return p.parentFinder(checks, tried, resolve)
}

// parentFinder is vdisk.Options.Parents for disk k: the package's disks
// (and, in a folder, the files beside the child) whose file name is one the
// child gives, beside the child first; for a child that names no file
// (VDI), every other disk, and the child's check picks. Reads go through
// checks when it is set. tried collects what each candidate reads, by
// name, so that the probe can record the members of the chain it kept.
func (p *Package) parentFinder(checks *integrity.Checks, tried map[string]*chainSource, resolve resolver) func(string, *blockmap.Parent) ([]vdisk.Source, error) {
	return func(child string, ref *blockmap.Parent) ([]vdisk.Source, error) {
		var out []vdisk.Source
		added := map[string]bool{}
		add := func(cs *chainSource) {
			if cs == nil || added[cs.src.Name] {
				return
			}
			added[cs.src.Name] = true
			tried[cs.src.Name] = cs
			out = append(out, cs.src)
		}
		if len(ref.Names) == 0 {
			for _, d := range p.Disks {
				add(p.diskSource(d, checks, resolve))
			}
			return out, nil
		}
		dir := path.Dir(child)
		for _, n := range ref.Names {
			base := parentBase(n)
			if base == "" {
				continue
			}
			for _, d := range p.Disks {
				if d.Name == path.Join(dir, base) {
					add(p.diskSource(d, checks, resolve))
				}
			}
			for _, d := range p.Disks {
				if path.Base(d.Name) == base {
					add(p.diskSource(d, checks, resolve))
				}
			}
			if resolve != nil {
				from := p.memberNamed(child)
				if cs := tried[child]; from == nil && cs != nil {
					from = cs.member // a parent found beside its child, in a folder
				}
				if from != nil {
					if m, err := resolve(from, base); err == nil {
						add(p.memberSource(m, checks, resolve))
					}
				}
			}
		}
		return out, nil
	}
}

// memberNamed is the stored member of that name, if a disk of the package
// is one (a gzip file's decoded image is not).
func (p *Package) memberNamed(name string) *ova.Member {
	for _, d := range p.Disks {
		if d.Name == name {
			if d.Member != nil {
				return d.Member
			}
			if d.File != nil && len(d.File.Members) == 1 && !d.File.Gzip {
				return d.File.Members[0]
			}
		}
	}
	return nil
}

// diskSource is disk d as a parent candidate: its bytes, and its extents
// found beside it.
func (p *Package) diskSource(d *Disk, checks *integrity.Checks, resolve resolver) *chainSource {
	if d.File == nil && d.Member == nil {
		return nil
	}
	r, size, base, err := d.source(checks)
	if err != nil {
		return nil
	}
	cs := &chainSource{members: d.members()}
	if d.resolve == nil {
		resolve = nil // a gzip file's image names no extents
	}
	cs.src = vdisk.Source{Name: d.Name, R: r, Size: size, Resolve: p.extentResolver(cs, base, checks, resolve)}
	return cs
}

// memberSource is a file beside the child that no descriptor names, as a
// parent candidate.
func (p *Package) memberSource(m *ova.Member, checks *integrity.Checks, resolve resolver) *chainSource {
	st := logical.StoredOf([]*ova.Member{m}, checks)
	cs := &chainSource{members: []*ova.Member{m}, member: m}
	cs.src = vdisk.Source{Name: m.Name, R: pick(st, checks), Size: st.Size, Resolve: p.extentResolver(cs, m, checks, resolve)}
	return cs
}

// extentResolver finds a parent's extents beside it, and adds them to what
// its chain reads.
func (p *Package) extentResolver(cs *chainSource, base *ova.Member, checks *integrity.Checks, resolve resolver) func(string) (io.ReaderAt, int64, error) {
	return func(name string) (io.ReaderAt, int64, error) {
		if base == nil || resolve == nil {
			return nil, 0, fmt.Errorf("extent %q: a split or compressed descriptor cannot name extents", name)
		}
		m, err := resolve(base, name)
		if err != nil {
			return nil, 0, err
		}
		cs.members = append(cs.members, m)
		if checks != nil {
			return checks.File(m), m.Size, nil
		}
		return m, m.Size, nil
	}
}

// keepChain records what the probe kept of a chain: the layers' names, and
// the members the view reads besides the disk's own.
func (k *Disk) keepChain(im vdisk.Image, tried map[string]*chainSource) {
	ls := im.Layers()
	if len(ls) < 2 {
		return
	}
	own := map[*ova.Member]bool{}
	for _, m := range k.members() {
		own[m] = true
	}
	for _, l := range ls[1:] {
		k.Chain = append(k.Chain, l.Name)
		if cs := tried[l.Name]; cs != nil {
			for _, m := range cs.members {
				if !own[m] {
					own[m] = true
					k.parentMembers = append(k.parentMembers, m)
				}
			}
		}
	}
}

// Image is the disk's image as the package's first look opened it, from
// unchecked reads: for what its tables say (format, size, map, chain), not
// for data a reader is served. Nil for a disk with no raw view.
func (k *Disk) Image() vdisk.Image { return k.probe }
