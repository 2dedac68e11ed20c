package manifest

import (
	"bytes"
	"path"
	"strings"
)

// Source is one parsed manifest and the archive member it was read from.
type Source struct {
	Name     string // e.g. "appliance.mf" or "disk1.mf"
	Manifest *Manifest
}

// Merge combines every manifest of a package into one, because a package
// may hold several (virt-v2v's two-disk test has disk1.mf and disk2.mf) and
// the files any of them lists deserve checking.
//
// The rules:
//   - The manifest named after the descriptor ("x.mf" for "x.ovf", compared
//     without case or folder) comes first, as the spec and VirtualBox expect
//     it; the others follow in the order given. When none is named so, a
//     warning says which were used instead.
//   - Where two manifests give the same file a digest under the same
//     algorithm, the first in that order wins. Equal digests merge
//     silently; different ones warn, naming both lines.
//   - Each entry's Manifest field names its source, and each source's own
//     warnings are kept, prefixed with its name.
//   - At most MaxEntries entries are kept.
//
// The result has no Raw bytes: a .cert signs one manifest, which the caller
// checks separately with the bytes of the .mf the .cert names.
func Merge(descriptor string, sources ...Source) *Manifest {
	ordered := make([]Source, 0, len(sources))
	var names []string
	preferred := false
	for _, s := range sources {
		if s.Manifest == nil {
			continue
		}
		if !preferred && descriptor != "" && sameBase(s.Name, descriptor) {
			ordered = append([]Source{s}, ordered...)
			preferred = true
		} else {
			ordered = append(ordered, s)
		}
		names = append(names, s.Name)
	}

	out := &Manifest{index: make(map[string][]int)}
	var w warnings
	if descriptor != "" && !preferred && len(ordered) > 0 {
		want := strings.TrimSuffix(path.Base(descriptor), path.Ext(descriptor)) + ".mf"
		w.add("no manifest named %s beside %s; using %s", snippet(want), snippet(descriptor), strings.Join(quoteAll(names), ", "))
	}
	dropped := 0
	for _, s := range ordered {
		for _, msg := range s.Manifest.Warnings {
			w.add("%s: %s", s.Name, msg)
		}
		for _, e := range s.Manifest.Entries {
			e.Manifest = s.Name
			first, dup := out.find(e)
			switch {
			case dup && !bytes.Equal(first.Digest, e.Digest):
				w.add("%s line %d and %s line %d give different %s digests for %s; the first is kept",
					snippet(first.Manifest), first.Line, snippet(e.Manifest), e.Line, e.Algorithm, snippet(e.Name))
			case dup:
				// The same digest again: already listed.
			case len(out.Entries) >= MaxEntries:
				dropped++
			default:
				out.add(e)
			}
		}
	}
	if dropped > 0 {
		w.add("%d entries beyond the first %d ignored", dropped, MaxEntries)
	}
	out.Warnings = w.result()
	return out
}

// sameBase reports whether manifest mf is named after descriptor: equal
// base names without extension, ignoring case and folders, and mf ending
// in ".mf".
func sameBase(mf, descriptor string) bool {
	mb, db := path.Base(mf), path.Base(descriptor)
	if !strings.EqualFold(path.Ext(mb), ".mf") {
		return false
	}
	return strings.EqualFold(strings.TrimSuffix(mb, path.Ext(mb)), strings.TrimSuffix(db, path.Ext(db)))
}

func quoteAll(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = snippet(n).String()
	}
	return q
}
