package ext4

import (
	"errors"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/guestfs"
)

var (
	_ guestfs.File   = (*file)(nil)
	_ guestfs.Sparse = (*file)(nil)
)

// seekSteps bounds the mapping steps of one NextData or NextHole call. A
// crafted block map can make every block a separate run; past the bound
// the answer is the safe one (data here, no hole before the end), which
// reads the right bytes, only less sparsely.
const seekSteps = 1 << 16

// file is an opened regular file (or, internally, a symlink's or an
// extended attribute inode's data).
type file struct {
	fs *FS
	in *inode
	// inline is the whole content of a file whose data is in its inode.
	inline []byte
}

// Open opens a regular file. Encrypted files are refused: without the key
// their bytes are ciphertext.
func (fs *FS) Open(ino uint64) (guestfs.File, error) {
	in, err := fs.inode(ino)
	if err != nil {
		return nil, err
	}
	switch in.fileType() {
	case guestfs.TypeRegular:
	case guestfs.TypeDir:
		return nil, fmt.Errorf("ext4: inode %d: %w", ino, guestfs.ErrIsDir)
	default:
		return nil, fmt.Errorf("ext4: inode %d (mode %#o) is not a regular file: %w", ino, in.mode, guestfs.ErrUnsupported)
	}
	if in.flags&inodeEncrypt != 0 {
		return nil, fmt.Errorf("ext4: inode %d is encrypted: %w", ino, guestfs.ErrUnsupported)
	}
	return fs.openData(in)
}

func (fs *FS) openData(in *inode) (*file, error) {
	f := &file{fs: fs, in: in}
	if in.flags&inodeInlineData != 0 {
		d, err := fs.inlineData(in)
		if err != nil {
			return nil, err
		}
		if int64(len(d)) > in.size {
			d = d[:in.size]
		}
		f.inline = d
	}
	return f, nil
}

func (f *file) Size() int64 { return f.in.size }

// ReadAt reads through the block map: each run of contiguous blocks is one
// read of the volume, holes and unwritten extents are zeros.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ext4: inode %d: negative offset %d", f.in.ino, off)
	}
	size := f.in.size
	if off >= size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > size-off {
		p = p[:size-off]
		eof = io.EOF
	}
	if f.in.flags&inodeInlineData != 0 {
		n := 0
		if off < int64(len(f.inline)) {
			n = copy(p, f.inline[off:])
		}
		clear(p[n:]) // past the stored bytes, as a hole
		return len(p), eof
	}
	fs := f.fs
	bs := fs.bs
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		lb, within := uint64(pos/bs), pos%bs
		want := uint64((int64(len(p)-done) + within + bs - 1) / bs)
		phys, n, kind, err := fs.mapBlocks(f.in, lb, want)
		if err != nil {
			return done, err
		}
		chunk := int64(n)*bs - within
		if chunk > int64(len(p)-done) {
			chunk = int64(len(p) - done)
		}
		dst := p[done : done+int(chunk)]
		if kind == runData {
			if m, err := fs.r.ReadAt(dst, int64(phys)*bs+within); m != len(dst) {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return done + m, fmt.Errorf("ext4: inode %d: reading block %d: %w", f.in.ino, phys, err)
			}
		} else {
			clear(dst)
		}
		done += int(chunk)
	}
	return done, eof
}

// NextData is the first offset at or after off holding data. Unwritten
// extents count as holes, as the kernel's SEEK_DATA sees them.
func (f *file) NextData(off int64) (int64, bool, error) {
	if off < 0 {
		off = 0
	}
	if off >= f.in.size {
		return 0, false, nil
	}
	if f.in.flags&inodeInlineData != 0 {
		return off, true, nil
	}
	bs := f.fs.bs
	pos := off
	for step := 0; pos < f.in.size; step++ {
		if step == seekSteps {
			return pos, true, nil
		}
		_, n, kind, err := f.fs.mapBlocks(f.in, uint64(pos/bs), 1<<62)
		if err != nil {
			return 0, false, err
		}
		if kind == runData {
			return pos, true, nil
		}
		pos = f.advance(pos, n)
	}
	return 0, false, nil
}

// NextHole is the first offset at or after off in a hole; the end of the
// file counts as one.
func (f *file) NextHole(off int64) (int64, error) {
	size := f.in.size
	if off < 0 {
		off = 0
	}
	if off >= size || f.in.flags&inodeInlineData != 0 {
		return size, nil
	}
	bs := f.fs.bs
	pos := off
	for step := 0; pos < size && step < seekSteps; step++ {
		_, n, kind, err := f.fs.mapBlocks(f.in, uint64(pos/bs), 1<<62)
		if err != nil {
			return 0, err
		}
		if kind != runData {
			return pos, nil
		}
		pos = f.advance(pos, n)
	}
	return size, nil
}

// advance is the offset n blocks past pos's block, at most the size (so
// that no huge hole overflows the arithmetic).
func (f *file) advance(pos int64, n uint64) int64 {
	bs := f.fs.bs
	if left := uint64((f.in.size-pos)/bs) + 1; n >= left {
		return f.in.size
	}
	return (pos/bs + int64(n)) * bs
}
