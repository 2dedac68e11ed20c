package appliance

import (
	"path"
	"sort"
	"strings"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/ovf"
)

// chooseDescriptor picks an OVA's descriptor: the first member, in archive
// order, whose name ends in .ovf (the OVF specification makes the first
// file of an OVA its descriptor), or the one the user named. The others
// are reported.
func (p *Package) chooseDescriptor(a *ova.Archive, want string) (*ova.Member, error) {
	all := inArchiveOrder(a.FilesWithSuffix(".ovf"))
	if len(all) == 0 {
		if want != "" {
			return nil, &NoSuchDescriptorError{Name: want}
		}
		return nil, nil
	}
	chosen := all[0]
	if want != "" {
		m, ok := a.Lookup(want)
		if !ok || m.Type != ova.TypeFile {
			var names []string
			for _, m := range all {
				names = append(names, m.Name)
			}
			return nil, &NoSuchDescriptorError{Name: want, Have: names}
		}
		chosen = m
	}
	var others []string
	for _, m := range all {
		if m != chosen {
			others = append(others, m.Name)
		}
	}
	if len(others) > 0 {
		p.warn("the archive holds other descriptors, not used: %s (--descriptor NAME mounts one of them)", strings.Join(others, ", "))
	}
	if first := firstFile(a); want == "" && first != nil && first != chosen && !a.IsZip() {
		p.warn("the descriptor %s is not the archive's first member (%s is): importers that stream OVAs, such as vSphere, refuse it", chosen.Name, first.Name)
	}
	return chosen, nil
}

// NoSuchDescriptorError is a --descriptor that names no descriptor.
type NoSuchDescriptorError struct {
	Name string
	Have []string
}

func (e *NoSuchDescriptorError) Error() string {
	if len(e.Have) == 0 {
		return "the package holds no descriptor " + e.Name + " (it holds none at all)"
	}
	return "the package holds no descriptor " + e.Name + " (it holds " + strings.Join(e.Have, ", ") + ")"
}

// inArchiveOrder sorts members by where their headers are.
func inArchiveOrder(ms []*ova.Member) []*ova.Member {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].HeaderOffset < ms[j].HeaderOffset })
	return ms
}

func firstFile(a *ova.Archive) *ova.Member {
	var first *ova.Member
	for _, m := range a.Files() {
		if m.HeaderOffset >= 0 && (first == nil || m.HeaderOffset < first.HeaderOffset) {
			first = m
		}
	}
	return first
}

// parseDescriptor parses the descriptor member.
func (p *Package) parseDescriptor(m *ova.Member) {
	env, err := ovf.Parse(m.Open())
	p.Descriptor = &Descriptor{Member: m, Env: env, Err: err}
	if err != nil {
		p.warn("%s: %v; disks are found by their magic bytes only", m.Name, err)
		return
	}
	for _, w := range env.Warnings {
		p.warn("%s: %s", m.Name, w)
	}
}

// metadataNames decides the package's own manifest and certificate among
// the names of the package's namespace (an OVA's members, or the files
// of an unpacked package's folder): <base>.mf and <base>.cert beside the
// descriptor. With a single descriptor and no <base>.mf, one other
// manifest in the descriptor's folder is read leniently, but never signs
// anything. single says the package holds one descriptor only.
func (p *Package) metadataNames(desc string, names []string, single bool) (mf string, lenient bool, cert string) {
	dir := parentOf(desc)
	base := strings.TrimSuffix(path.Base(desc), path.Ext(desc))
	var mfs, certs []string
	for _, n := range names {
		if parentOf(n) != dir {
			continue
		}
		switch strings.ToLower(path.Ext(n)) {
		case ".mf":
			mfs = append(mfs, n)
		case ".cert":
			certs = append(certs, n)
		}
	}
	mf = named(mfs, path.Join(dir, base+".mf"))
	cert = named(certs, path.Join(dir, base+".cert"))
	if mf == "" {
		var others []string
		for _, n := range mfs {
			others = append(others, n)
		}
		switch {
		case single && len(others) == 1:
			mf, lenient = others[0], true
			p.warn("no manifest named %s beside %s; %s is read instead, leniently: its digests are checked, but it cannot make the package signed",
				path.Base(base+".mf"), desc, mf)
		case len(others) > 1:
			p.warn("no manifest named %s beside %s, and several others (%s): none is used, nothing can be verified",
				path.Base(base+".mf"), desc, strings.Join(others, ", "))
		}
		if len(others) == 0 {
			p.warn("the package has no manifest (%s): nothing can be verified", path.Base(base+".mf"))
		}
		if cert != "" {
			p.warn("%s has no manifest named %s to sign: the package counts as unsigned", cert, path.Base(base+".mf"))
			cert = ""
		}
	}
	return mf, lenient, cert
}

// named finds want among names: exactly, or else without regard to case
// (Windows-made packages).
func named(names []string, want string) string {
	for _, n := range names {
		if n == want {
			return n
		}
	}
	for _, n := range names {
		if strings.EqualFold(n, want) {
			return n
		}
	}
	return ""
}

// foreign lists an archive's manifests and certificates that are not the
// package's own.
func foreign(a *ova.Archive, own ...*ova.Member) []*ova.Member {
	var out []*ova.Member
	for _, m := range a.Files() {
		lower := strings.ToLower(m.Name)
		if !strings.HasSuffix(lower, ".mf") && !strings.HasSuffix(lower, ".cert") {
			continue
		}
		isOwn := false
		for _, o := range own {
			isOwn = isOwn || o == m
		}
		if !isOwn {
			out = append(out, m)
		}
	}
	return out
}
