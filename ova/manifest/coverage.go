package manifest

import (
	"path"
	"strings"
)

// Report compares a manifest with the files present in a package.
type Report struct {
	// Missing lists the names the manifest gives that are not present, as
	// the manifest writes them, each once. VMware warns about these and
	// virt-v2v ignores them, but a digest with nothing to check is worth
	// reporting.
	Missing []string
	// Unlisted lists the files present that the manifest does not cover
	// (XenAdmin refuses such packages), in the order given, without the
	// descriptor, manifests, certificates and excluded names.
	Unlisted []string
	// DescriptorUnlisted is true when the manifest has no entry for the
	// descriptor, which the spec requires and vCenter insists on.
	DescriptorUnlisted bool
}

// Complete reports whether the manifest covers exactly the files present.
func (r Report) Complete() bool {
	return len(r.Missing) == 0 && len(r.Unlisted) == 0 && !r.DescriptorUnlisted
}

// Warnings describes the report's findings in words, one per name, at most
// MaxWarnings and then a count.
func (r Report) Warnings() []string {
	var w warnings
	if r.DescriptorUnlisted {
		w.add("the manifest has no entry for the descriptor")
	}
	for _, n := range r.Missing {
		w.add("%s is listed in the manifest but not present", snippet(n))
	}
	for _, n := range r.Unlisted {
		w.add("%s is present but not listed in the manifest", snippet(n))
	}
	return w.result()
}

// Coverage compares m with the files present in the package. Names in
// present and descriptor are relative to the folder the manifest's names
// are relative to (the descriptor's folder); chunked files are present
// under their chunk names ("disk.vmdk.000000000"), which is also how
// manifests list them. Manifests (*.mf) and certificates (*.cert) are
// never expected in a manifest, so they are never Unlisted; exclude, when
// not nil, removes other names the caller does not count as package files,
// such as AppleDouble "._" files. A nil m covers nothing.
func Coverage(m *Manifest, present []string, descriptor string, exclude func(name string) bool) Report {
	var r Report
	listed := make(map[string]bool)
	if m != nil {
		for _, e := range m.Entries {
			listed[canonName(e.Name)] = true
		}
	}
	have := make(map[string]bool, len(present))
	for _, p := range present {
		have[canonName(p)] = true
	}
	desc := canonName(descriptor)

	if m != nil {
		reported := make(map[string]bool)
		for _, e := range m.Entries {
			k := canonName(e.Name)
			if !have[k] && !reported[k] {
				reported[k] = true
				r.Missing = append(r.Missing, e.Name)
			}
		}
	}
	reported := make(map[string]bool)
	for _, p := range present {
		k := canonName(p)
		if listed[k] || reported[k] || k == desc || isMetadata(p) || exclude != nil && exclude(p) {
			continue
		}
		reported[k] = true
		r.Unlisted = append(r.Unlisted, p)
	}
	r.DescriptorUnlisted = descriptor != "" && !listed[desc]
	return r
}

// isMetadata reports whether name is a manifest or certificate file, which
// sign or list the package rather than belong to it.
func isMetadata(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".mf" || ext == ".cert"
}
