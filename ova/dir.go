package ova

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ovfmount/ovfmount/ova/ovf"
)

// OpenPackageDir indexes an unpacked OVF package from its descriptor: the
// descriptor itself, every manifest (.mf) and certificate (.cert) beside
// it, and the files its References name, including the chunks of a chunked
// file. Only files inside the descriptor's folder are ever opened; an href
// that leaves it, directly or through a symlink, is refused with a warning.
// Close releases the open files.
func OpenPackageDir(descriptor string) (*Archive, error) {
	dir := filepath.Dir(descriptor)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("ova: %w", err)
	}
	defer root.Close()
	p := &dirPackage{root: root, tree: newTree(nil)}
	defer func() {
		if err != nil {
			p.closeAll()
		}
	}()

	base := filepath.Base(descriptor)
	d, err := p.add(base)
	if err != nil {
		return nil, err
	}
	var refs []ovf.File
	if env, perr := ovf.Parse(d.Open()); perr != nil {
		p.warnf(base, "%v; only the descriptor, manifests and certificates are served", perr)
	} else {
		refs = env.Files
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ova: %w", err)
	}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if (ext == ".mf" || ext == ".cert") && e.Type().IsRegular() {
			if _, err := p.add(e.Name()); err != nil {
				p.warnf(e.Name(), "%v", err)
			}
		}
	}
	for _, ref := range refs {
		p.addRef(ref)
	}
	a := newArchive(p.total, p.tree.members(), append(p.warn, p.tree.warn...))
	a.files = p.files
	return a, nil
}

// maxPackageFiles bounds how many files an unpacked package may hold open,
// so that a descriptor naming thousands of chunks cannot exhaust the
// process's file descriptors.
const maxPackageFiles = 4096

type dirPackage struct {
	root  *os.Root
	tree  *tree
	files []*os.File
	total int64
	warn  []Warning
}

func (p *dirPackage) warnf(name, format string, args ...any) {
	p.warn = append(p.warn, Warning{Offset: -1, Name: name, Msg: fmt.Sprintf(format, args...)})
}

func (p *dirPackage) closeAll() {
	for _, f := range p.files {
		f.Close()
	}
}

// add opens name inside the package folder and records it as a member.
// os.Root refuses any path, symlink included, that leads outside.
func (p *dirPackage) add(name string) (*Member, error) {
	if n := p.tree.nodes[name]; n != nil {
		return n.m, nil
	}
	if len(p.files) >= maxPackageFiles {
		return nil, fmt.Errorf("ova: %s not served: the package already has %d files open", name, maxPackageFiles)
	}
	f, err := p.root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("ova: %w", err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", name)
		}
		return nil, fmt.Errorf("ova: %w", err)
	}
	p.files = append(p.files, f)
	p.total += st.Size()
	m := &Member{Type: TypeFile, Size: st.Size(), src: f, avail: st.Size()}
	if st.Size() > 0 {
		m.one[0] = fragment{len: st.Size()}
		m.frags = m.one[:]
	}
	e := &entry{hdrOff: -1, rawName: name, mode: int64(st.Mode().Perm()), mtime: st.ModTime()}
	if !p.tree.leaf(name, e, m) {
		return nil, fmt.Errorf("ova: %s cannot be placed in the package tree", name)
	}
	return m, nil
}

// addRef adds the file an href names, or its chunks.
func (p *dirPackage) addRef(ref ovf.File) {
	name, err := LocalHref(ref.Href)
	if err != nil {
		p.warnf(ref.Href, "%v", err)
		return
	}
	if _, err := p.add(name); err == nil {
		return
	} else if !errors.Is(err, fs.ErrNotExist) {
		p.warnf(ref.Href, "not served: %v", err)
		return
	}
	found := 0
	for ; found < maxPackageFiles; found++ {
		if _, err := p.add(ChunkName(name, found)); err != nil {
			break
		}
	}
	if found == 0 {
		p.warnf(ref.Href, "the descriptor references this file, but it is not in the package folder")
	}
}
