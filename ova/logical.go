package ova

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/ovfmount/ovfmount/ova/ovf"
)

// Descriptor is one parsed .ovf of the package.
type Descriptor struct {
	Member *Member
	Env    *ovf.Envelope // nil when it could not be parsed
	Err    error
}

// Dir is the package folder the descriptor's hrefs are relative to.
func (d *Descriptor) Dir() string { return parentOf(d.Member.Name) }

// Descriptors parses every descriptor of the package, shallowest first,
// then by name: the first is the package's own.
func (a *Archive) Descriptors() []*Descriptor {
	ms := a.FilesWithSuffix(".ovf")
	sort.SliceStable(ms, func(i, j int) bool {
		return strings.Count(ms[i].Name, "/") < strings.Count(ms[j].Name, "/")
	})
	var out []*Descriptor
	for _, m := range ms {
		env, err := ovf.Parse(m.Open())
		out = append(out, &Descriptor{Member: m, Env: env, Err: err})
	}
	return out
}

// LogicalFile is a file as the descriptor names it: one member, the chunks
// of a file split with ovf:chunkSize, and possibly gzip-compressed.
type LogicalFile struct {
	Ref  ovf.File
	Name string // the href's path in the package
	// Members are the stored members, in order: the file itself, or its
	// chunks (Name.000000000, Name.000000001, ...).
	Members []*Member
	Chunked bool
	Gzip    bool
	// Disk is the DiskSection entry whose image this file holds, if any.
	Disk *ovf.Disk
}

// StoredSize is the bytes the archive holds for the file.
func (f *LogicalFile) StoredSize() int64 {
	var n int64
	for _, m := range f.Members {
		n += m.Size
	}
	return n
}

// DecodedName is where the decompressed content of a gzip file belongs:
// its name without ".gz". Other files keep their name.
func (f *LogicalFile) DecodedName() string {
	if f.Gzip {
		return strings.TrimSuffix(f.Name, ".gz")
	}
	return f.Name
}

// ResolveFiles joins a descriptor's References with the members that store
// them. What does not fit is a warning, never an error: an href that
// leaves the package, a file that is absent, a declared size that differs
// from the stored one, chunks of the wrong size, an unknown compression.
func ResolveFiles(a *Archive, d *Descriptor) ([]*LogicalFile, []Warning) {
	var files []*LogicalFile
	var warn []Warning
	w := func(ref ovf.File, format string, args ...any) {
		warn = append(warn, Warning{Offset: -1, Name: d.Member.Name, Msg: fmt.Sprintf("file %q: ", ref.Href) + fmt.Sprintf(format, args...)})
	}
	if d.Env == nil {
		return nil, nil
	}
	disks := map[string]*ovf.Disk{}
	for i := range d.Env.Disks {
		if id := d.Env.Disks[i].FileRef; id != "" {
			disks[id] = &d.Env.Disks[i]
		}
	}
	for _, ref := range d.Env.Files {
		rel, err := LocalHref(ref.Href)
		if err != nil {
			w(ref, "not served: %v", err)
			continue
		}
		f := &LogicalFile{Ref: ref, Name: path.Join(d.Dir(), rel), Disk: disks[ref.ID]}
		switch strings.ToLower(ref.Compression) {
		case "", "identity":
		case "gzip":
			f.Gzip = true
		default:
			w(ref, "compression %q is not supported; the stored file is served as it is", ref.Compression)
		}
		if ref.ChunkSize > 0 {
			f.Chunked = true
			for i := 0; ; i++ {
				m, ok := a.Lookup(ChunkName(f.Name, i))
				if !ok || m.Type != TypeFile {
					break
				}
				f.Members = append(f.Members, m)
			}
			for i, m := range f.Members {
				if last := i == len(f.Members)-1; (!last && m.Size != ref.ChunkSize) || (last && m.Size > ref.ChunkSize) {
					w(ref, "chunk %s is %d bytes, but ovf:chunkSize is %d", m.Name, m.Size, ref.ChunkSize)
				}
			}
		}
		if len(f.Members) == 0 {
			if m, ok := a.Lookup(f.Name); ok && m.Type == TypeFile {
				f.Members = []*Member{m}
				f.Chunked = false
			}
		}
		if len(f.Members) == 0 {
			w(ref, "referenced by the descriptor but not in the package")
			continue
		}
		if ref.Size >= 0 && ref.Size != f.StoredSize() {
			w(ref, "ovf:size says %d bytes, the package holds %d", ref.Size, f.StoredSize())
		}
		files = append(files, f)
	}
	return files, warn
}

// JoinedReader reads parts back to back as one file: the logical file of a
// chunked OVF file. first, if set, is called once per part, the first
// time a read needs it, so that each chunk can be verified on its own
// when it is first needed.
type JoinedReader struct {
	parts  []io.ReaderAt
	starts []int64 // offset of each part; starts[len(parts)] is the size
	first  func(i int)
	once   []sync.Once
}

// NewJoinedReader joins parts of the given sizes.
func NewJoinedReader(parts []io.ReaderAt, sizes []int64, first func(i int)) *JoinedReader {
	j := &JoinedReader{parts: parts, starts: make([]int64, len(parts)+1), first: first, once: make([]sync.Once, len(parts))}
	for i, s := range sizes {
		j.starts[i+1] = j.starts[i] + s
	}
	return j
}

// Size is the joined length.
func (j *JoinedReader) Size() int64 { return j.starts[len(j.parts)] }

// Parts are the readers joined.
func (j *JoinedReader) Parts() []io.ReaderAt { return j.parts }

var errPartShort = errors.New("chunk ended before its size")

func (j *JoinedReader) ReadAt(p []byte, off int64) (int, error) {
	size := j.Size()
	if off < 0 {
		return 0, errors.New("ova: negative offset")
	}
	if off >= size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), size-off))
	i := sort.Search(len(j.parts), func(i int) bool { return j.starts[i+1] > off })
	for done := 0; done < n; i++ {
		pos := off + int64(done)
		k := int(min(int64(n-done), j.starts[i+1]-pos))
		if j.first != nil {
			j.once[i].Do(func() { j.first(i) })
		}
		got, err := j.parts[i].ReadAt(p[done:done+k], pos-j.starts[i])
		if got < k {
			if err == nil || err == io.EOF {
				err = errPartShort
			}
			return 0, fmt.Errorf("ova: chunk %d: %w", i, err)
		}
		done += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
