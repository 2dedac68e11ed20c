package appliance

import (
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/logical"
	"github.com/ovfmount/ovfmount/ova/ovf"
)

// File is a file as the descriptor names it: one member, the chunks of a
// file split with ovf:chunkSize, and possibly gzip-compressed.
type File struct {
	Ref  ovf.File
	Name string // the href's path in the package
	// Members are the stored members, in order: the file itself, or its
	// chunks (Name.000000000, Name.000000001, ...).
	Members []*ova.Member
	Chunked bool
	Gzip    bool
	// Disk is the DiskSection entry whose image this file holds, if any.
	Disk *ovf.Disk

	gz *logical.Gzip // the decompressed content, once opened
}

// StoredSize is the bytes the archive holds for the file.
func (f *File) StoredSize() int64 {
	var n int64
	for _, m := range f.Members {
		n += m.Size
	}
	return n
}

// DecodedName is where the decompressed content of a gzip file belongs:
// its name without ".gz". Other files keep their name.
func (f *File) DecodedName() string {
	if f.Gzip {
		return strings.TrimSuffix(f.Name, ".gz")
	}
	return f.Name
}

// lookupFunc finds a file of the package by its path: an OVA's member, or
// a file an unpacked package's folder opens on demand.
type lookupFunc func(name string) (*ova.Member, error)

func archiveLookup(a *ova.Archive) lookupFunc {
	return func(name string) (*ova.Member, error) {
		m, ok := a.Lookup(name)
		if !ok || m.Type != ova.TypeFile {
			return nil, fs.ErrNotExist
		}
		return m, nil
	}
}

// resolveFiles joins the descriptor's References with the files that store
// them. What does not fit is a warning, never an error: an href that
// leaves the package, a file that is absent, a declared size that differs
// from the stored one, chunks of the wrong size, an unknown compression.
func (p *Package) resolveFiles(lookup lookupFunc) {
	d := p.Descriptor
	if d == nil || d.Env == nil {
		return
	}
	disks := map[string]*ovf.Disk{}
	for i := range d.Env.Disks {
		if id := d.Env.Disks[i].FileRef; id != "" {
			disks[id] = &d.Env.Disks[i]
		}
	}
	for _, ref := range d.Env.Files {
		w := func(format string, args ...any) {
			p.warn("%s: file %q: "+format, append([]any{d.Member.Name, ref.Href}, args...)...)
		}
		rel, err := ova.LocalHref(ref.Href)
		if err != nil {
			w("not served: %v", err)
			continue
		}
		f := &File{Ref: ref, Name: path.Join(d.Dir(), rel), Disk: disks[ref.ID]}
		switch strings.ToLower(ref.Compression) {
		case "", "identity":
		case "gzip":
			f.Gzip = true
		default:
			w("compression %q is not supported; the stored file is served as it is", ref.Compression)
		}
		if m, err := lookup(f.Name); err == nil {
			f.Members = []*ova.Member{m}
		} else if !errors.Is(err, fs.ErrNotExist) {
			w("not served: %v", err)
			continue
		}
		if ref.ChunkSize > 0 && len(f.Members) == 0 {
			f.Chunked = true
			for i := 0; i < maxChunks; i++ {
				m, err := lookup(ova.ChunkName(f.Name, i))
				if err != nil {
					break
				}
				f.Members = append(f.Members, m)
			}
			for i, m := range f.Members {
				if last := i == len(f.Members)-1; (!last && m.Size != ref.ChunkSize) || (last && m.Size > ref.ChunkSize) {
					w("chunk %s is %d bytes, but ovf:chunkSize is %d", m.Name, m.Size, ref.ChunkSize)
				}
			}
		}
		if len(f.Members) == 0 {
			w("referenced by the descriptor but not in the package")
			continue
		}
		if ref.Size >= 0 && ref.Size != f.StoredSize() {
			w("ovf:size says %d bytes, the package holds %d", ref.Size, f.StoredSize())
		}
		p.Files = append(p.Files, f)
	}
}

// maxChunks bounds the chunks of one file looked up, so that a hostile
// chunk size cannot make the lookup run forever.
const maxChunks = 4096
