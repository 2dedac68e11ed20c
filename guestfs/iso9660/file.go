package iso9660

import (
	"fmt"
	"io"
	"sort"

	"github.com/ovfmount/ovfmount/guestfs"
)

// file is an opened regular file: one extent, or several for a
// multi-extent file (over 4 GiB, or split by the writer).
type file struct {
	fs      *FS
	ino     uint64
	size    int64
	extents []extent
	starts  []int64 // file offset of each extent
}

// Open opens a regular file's data.
func (fs *FS) Open(ino uint64) (guestfs.File, error) {
	n, err := fs.node(ino)
	if err != nil {
		return nil, err
	}
	switch t := n.typ(); {
	case t == guestfs.TypeDir:
		return nil, fmt.Errorf("iso9660: inode %d: %w", ino, guestfs.ErrIsDir)
	case t != guestfs.TypeRegular:
		return nil, fmt.Errorf("iso9660: inode %d: not a regular file: %w", ino, guestfs.ErrUnsupported)
	case n.rr != nil && n.rr.unsupported != "":
		return nil, fmt.Errorf("iso9660: inode %d: %s: %w", ino, n.rr.unsupported, guestfs.ErrUnsupported)
	case n.interleaved:
		return nil, fmt.Errorf("iso9660: inode %d: an interleaved file (file unit size and gap), as Linux refuses: %w", ino, guestfs.ErrUnsupported)
	}
	f := &file{fs: fs, ino: ino, size: n.size, extents: n.extents}
	at := int64(0)
	for _, e := range n.extents {
		f.starts = append(f.starts, at)
		at += e.n
	}
	return f, nil
}

func (f *file) Size() int64 { return f.size }

// ReadAt reads p from off, one read of the volume per extent touched.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("iso9660: inode %d: negative offset %d", f.ino, off)
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), f.size-off)]
	done := 0
	for done < len(want) {
		pos := off + int64(done)
		i := sort.Search(len(f.starts), func(i int) bool { return f.starts[i] > pos }) - 1
		for i >= 0 && f.extents[i].n == 0 {
			i--
		}
		if i < 0 || pos-f.starts[i] >= f.extents[i].n {
			return done, fmt.Errorf("iso9660: inode %d: offset %d in no extent: %w", f.ino, pos, guestfs.ErrCorrupt)
		}
		e := f.extents[i]
		in := pos - f.starts[i]
		n := min(int64(len(want)-done), e.n-in)
		if err := f.fs.readAt(want[done:done+int(n)], e.off+in); err != nil {
			return done, fmt.Errorf("iso9660: inode %d at %d: %w", f.ino, pos, err)
		}
		done += int(n)
	}
	if len(want) < len(p) {
		return done, io.EOF
	}
	return done, nil
}
