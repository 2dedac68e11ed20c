package ova

import (
	"fmt"
	"io"
	"io/fs"
	"sort"
	"time"
)

// Type is the kind of a member, after links are resolved and special files
// dropped.
type Type uint8

const (
	TypeFile Type = iota
	TypeDir
	TypeSymlink
)

func (t Type) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	}
	return "invalid"
}

// fragment places stored bytes in the logical file: logical [off, off+len)
// is at archive offset phys. A plain member has one fragment; a sparse
// member has one per data region, and the gaps read as zeros.
type fragment struct{ off, len, phys int64 }

// Member is one file, directory or symlink of the package.
type Member struct {
	Name     string      // slash-separated, cleaned, relative; "" is the root
	Type     Type        //
	Mode     fs.FileMode // permission bits only
	Size     int64       // logical size in bytes
	ModTime  time.Time   //
	Linkname string      // symlink target, exactly as stored
	UID, GID int         // owner recorded in the archive

	// HeaderOffset is the archive offset of the member's tar header (of
	// its local file header in a zip archive), or -1 for a file of an
	// unpacked package and for a directory that no header names.
	HeaderOffset int64

	src    io.ReaderAt
	hostID []byte // a folder's file: its FileIdentity
	frags  []fragment
	avail  int64 // logical bytes present; less than Size when truncated
	one    [1]fragment
	zip    *zipMember // a zip archive's entry; then src is zip when not stored
	tar    *TarHeader // a tar member's header (tarformat.go); nil otherwise
}

// Truncated reports whether the archive ends inside the member's data.
func (m *Member) Truncated() bool { return m.avail < m.Size }

// Available is how many leading bytes of the member the archive holds.
func (m *Member) Available() int64 { return m.avail }

// Sparse reports whether parts of the member are holes, not stored bytes.
func (m *Member) Sparse() bool {
	var n int64
	for _, f := range m.frags {
		n += f.len
	}
	return n != m.Size
}

// StoredSize is the number of the member's bytes the archive holds, which
// is what st_blocks should count.
func (m *Member) StoredSize() int64 {
	var n int64
	for _, f := range m.frags {
		if f.off >= m.avail {
			break
		}
		n += min(f.len, m.avail-f.off)
	}
	return n
}

// Contiguous returns where the member's bytes are when they are stored in
// one piece and all present, so that a caller can serve them without
// copying (for example by splicing from the archive's file descriptor). The
// caller must clamp to Size.
func (m *Member) Contiguous() (src io.ReaderAt, phys int64, ok bool) {
	if m.Type != TypeFile || m.avail != m.Size || m.zip != nil && !m.zip.plain() {
		return nil, 0, false
	}
	switch len(m.frags) {
	case 0:
		return m.src, 0, m.Size == 0
	case 1:
		f := m.frags[0]
		return m.src, f.phys, f.off == 0 && f.len == m.Size
	}
	return nil, 0, false
}

// DataExtent is a logical range of a member that holds stored bytes.
type DataExtent struct{ Off, Len int64 }

// DataExtents lists the member's stored ranges in order; everything else
// reads as zeros. It answers SEEK_DATA and SEEK_HOLE.
func (m *Member) DataExtents() []DataExtent {
	out := make([]DataExtent, 0, len(m.frags))
	for _, f := range m.frags {
		out = append(out, DataExtent{f.off, f.len})
	}
	return out
}

// ReadAt reads the member's logical bytes. It never reads outside the
// member's stored range in the archive. A read that reaches bytes a
// truncated archive lacks fails with ErrTruncated as a whole, rather than
// returning a short count, because a short read would look like the end of
// the file to a caller (the kernel would even shrink the file's size).
func (m *Member) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ova: %s: negative offset %d", m.Name, off)
	}
	if m.Type != TypeFile {
		return 0, fmt.Errorf("ova: %s: is a %s, not a file", m.Name, m.Type)
	}
	if off >= m.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), m.Size-off))
	if off+int64(n) > m.avail {
		return 0, fmt.Errorf("ova: %s: bytes %d to %d requested, but the archive ends after byte %d of %d: %w",
			m.Name, off, off+int64(n), m.avail, m.Size, ErrTruncated)
	}
	if m.zip != nil && !m.zip.plain() {
		// A deflated (or unreadable) zip entry: its source gives logical
		// bytes, and its errors already name the entry.
		if k, err := m.zip.ReadAt(p[:n], off); k < n {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("ova: %s: the data ends at byte %d: %w", m.Name, off+int64(k), ErrChanged)
			}
			return 0, err
		}
	} else if err := m.fill(p[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *Member) fill(p []byte, off int64) error {
	end := off + int64(len(p))
	i := sort.Search(len(m.frags), func(i int) bool { return m.frags[i].off+m.frags[i].len > off })
	pos := off
	for pos < end {
		if i >= len(m.frags) || m.frags[i].off >= end {
			clear(p[pos-off:])
			return nil
		}
		f := m.frags[i]
		if f.off > pos { // hole before the fragment
			clear(p[pos-off : f.off-off])
			pos = f.off
		}
		stop := min(end, f.off+f.len)
		dst := p[pos-off : stop-off]
		phys := f.phys + (pos - f.off)
		k, err := m.src.ReadAt(dst, phys)
		if k < len(dst) {
			if err == nil || err == io.EOF {
				return fmt.Errorf("ova: %s: archive ends at offset %d, inside the member: %w", m.Name, phys+int64(k), ErrChanged)
			}
			return fmt.Errorf("ova: %s: reading archive offset %d: %w", m.Name, phys+int64(k), err)
		}
		pos = stop
		i++
	}
	return nil
}

// Open returns a reader over the member's bytes.
func (m *Member) Open() *io.SectionReader { return io.NewSectionReader(m, 0, m.Size) }
