package ova

import (
	"errors"
	"io"
	"os"
	"strings"
)

// Archive is an indexed OVF package: the members of an OVA tar, or the
// files of an unpacked package folder. It is immutable and safe for
// concurrent use.
type Archive struct {
	size     int64
	members  []*Member // sorted by name; members[0] is the root
	byName   map[string]*Member
	children map[string][]*Member
	warnings []Warning
	files    []*os.File // the open files of an unpacked package
	zip      bool       // indexed from a zip's central directory
}

// IsZip reports whether the archive is a zip (OpenZip), whose member
// order means nothing to importers, unlike a tar's.
func (a *Archive) IsZip() bool { return a.zip }

// Open indexes the tar archive of size bytes that r reads. It reads only
// headers. It fails with ErrFormat when r is not a tar archive; anything
// wrong after the first valid header is a warning (see Warnings).
func Open(r io.ReaderAt, size int64) (*Archive, error) {
	t := newTree(r)
	s := &scanner{r: r, size: size, emit: t.add}
	if err := s.scan(); err != nil {
		return nil, err
	}
	return newArchive(size, t.members(), append(s.warn, t.warn...)), nil
}

func newArchive(size int64, members []*Member, warnings []Warning) *Archive {
	a := &Archive{
		size:     size,
		members:  members,
		byName:   make(map[string]*Member, len(members)),
		children: map[string][]*Member{},
		warnings: warnings,
	}
	for _, m := range members {
		a.byName[m.Name] = m
		if m.Name != "" {
			p := parentOf(m.Name)
			a.children[p] = append(a.children[p], m)
		}
	}
	return a
}

// Size is the length of the archive in bytes (for a folder, the sum of
// its files).
func (a *Archive) Size() int64 { return a.size }

// Members lists every member sorted by name. The first is the root
// directory, whose name is "".
func (a *Archive) Members() []*Member { return a.members }

// Root is the root directory.
func (a *Archive) Root() *Member { return a.members[0] }

// Lookup finds a member by its mounted path ("a/b.vmdk"); a leading "./"
// or "/" is ignored.
func (a *Archive) Lookup(name string) (*Member, bool) {
	clean, _, ok := cleanName(name)
	if !ok {
		return nil, false
	}
	m, ok := a.byName[clean]
	return m, ok
}

// Children lists the members directly inside the directory dir, sorted by
// name.
func (a *Archive) Children(dir *Member) []*Member { return a.children[dir.Name] }

// Base is the last component of the member's path.
func (m *Member) Base() string { return baseOf(m.Name) }

// Warnings lists what the index tolerated, in archive order.
func (a *Archive) Warnings() []Warning { return a.warnings }

// Files lists the regular files, sorted by name.
func (a *Archive) Files() []*Member {
	var out []*Member
	for _, m := range a.members {
		if m.Type == TypeFile {
			out = append(out, m)
		}
	}
	return out
}

// FilesWithSuffix lists the regular files whose name ends in suffix,
// compared case-insensitively (".ovf", ".mf").
func (a *Archive) FilesWithSuffix(suffix string) []*Member {
	var out []*Member
	for _, m := range a.Files() {
		if strings.HasSuffix(strings.ToLower(m.Name), strings.ToLower(suffix)) {
			out = append(out, m)
		}
	}
	return out
}

// Close releases the files an unpacked package holds open, and the
// decoders a zip archive's deflated entries keep. The caller owns the
// reader of a tar or zip archive and closes it.
func (a *Archive) Close() error {
	a.forgetInflates()
	var errs []error
	for _, f := range a.files {
		errs = append(errs, f.Close())
	}
	a.files = nil
	return errors.Join(errs...)
}
