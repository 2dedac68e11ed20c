package ova

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Folder is the folder of an unpacked package (or of a loose disk image),
// from which the package's model takes the files that belong to the
// package, one by one: the descriptor, its own manifest and certificate,
// the files its References name, the extents a VMDK descriptor names. Only
// files inside the folder are ever opened: os.Root refuses any path,
// symlinks included, that leads outside.
type Folder struct {
	dir   string
	root  *os.Root
	tree  *tree
	files []*os.File
	total int64
	warn  []Warning
	done  bool
}

// maxPackageFiles bounds how many files an unpacked package may hold open,
// so that a descriptor naming thousands of chunks cannot exhaust the
// process's file descriptors.
const maxPackageFiles = 4096

// OpenFolder opens dir for Add.
func OpenFolder(dir string) (*Folder, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("ova: %w", err)
	}
	return &Folder{dir: dir, root: root, tree: newTree(nil)}, nil
}

// Dir is the folder's path.
func (p *Folder) Dir() string { return p.dir }

// Names lists the regular files directly in the folder, sorted: what a
// model chooses a descriptor and manifests among.
func (p *Folder) Names() ([]string, error) {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, fmt.Errorf("ova: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// NamesWithSuffix lists the regular files of the folder whose name ends in
// suffix, compared without case.
func (p *Folder) NamesWithSuffix(suffix string) ([]string, error) {
	names, err := p.Names()
	var out []string
	for _, n := range names {
		if strings.HasSuffix(strings.ToLower(n), strings.ToLower(suffix)) {
			out = append(out, n)
		}
	}
	return out, err
}

// Warn records a warning about the folder's files.
func (p *Folder) Warn(name, format string, args ...any) {
	p.warn = append(p.warn, Warning{Offset: -1, Name: name, Msg: fmt.Sprintf(format, args...)})
}

// Add opens name (a slash-separated path inside the folder) and records
// it as a member; adding a name again returns the same member. An absent
// file fails with an error matching fs.ErrNotExist.
func (p *Folder) Add(name string) (*Member, error) {
	if p.done {
		return nil, errors.New("ova: the folder's archive is already built")
	}
	clean, note, ok := cleanName(name)
	if !ok || clean == "" {
		return nil, fmt.Errorf("ova: %q is not a file of the folder: %s", name, note)
	}
	if n := p.tree.nodes[clean]; n != nil {
		if n.m.Type != TypeFile {
			return nil, fmt.Errorf("ova: %s is not a regular file", clean)
		}
		return n.m, nil
	}
	if len(p.files) >= maxPackageFiles {
		return nil, fmt.Errorf("ova: %s not served: the package already has %d files open", clean, maxPackageFiles)
	}
	f, err := p.root.Open(clean)
	if err != nil {
		return nil, fmt.Errorf("ova: %w", err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", clean)
		}
		return nil, fmt.Errorf("ova: %w", err)
	}
	m := &Member{Type: TypeFile, Size: st.Size(), src: f, avail: st.Size(), hostID: FileIdentity(st)}
	if st.Size() > 0 {
		m.one[0] = fragment{len: st.Size()}
		m.frags = m.one[:]
	}
	e := &entry{hdrOff: -1, rawName: clean, mode: int64(st.Mode().Perm()), mtime: st.ModTime()}
	if !p.tree.leaf(clean, e, m) {
		f.Close()
		return nil, fmt.Errorf("ova: %s cannot be placed in the package tree", clean)
	}
	p.files = append(p.files, f)
	p.total += st.Size()
	return m, nil
}

// Archive is the archive of every file added. Call it once, after the last
// Add; the archive then owns the open files (Archive.Close releases them).
func (p *Folder) Archive() *Archive {
	p.done = true
	p.root.Close()
	a := newArchive(p.total, p.tree.members(), append(p.warn, p.tree.warn...))
	a.files = p.files
	p.files = nil
	return a
}

// Close releases the files of a folder whose archive was never built.
func (p *Folder) Close() {
	if !p.done {
		p.root.Close()
	}
	for _, f := range p.files {
		f.Close()
	}
	p.files = nil
	p.done = true
}
