package ntfs

import (
	"errors"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/guestfs"
)

// file is an opened regular file's unnamed data stream.
type file struct {
	fs *FS
	s  *stream
}

var (
	_ guestfs.File   = (*file)(nil)
	_ guestfs.Sparse = (*file)(nil)
)

// Open opens a regular file's data. Encrypted files, and those whose
// data a Windows filter keeps elsewhere (WOF compression, deduplication),
// are ErrUnsupported.
func (fs *FS) Open(ino uint64) (guestfs.File, error) {
	n, err := fs.node(ino)
	if err != nil {
		return nil, err
	}
	k, err := fs.kindOf(n)
	if err != nil {
		return nil, err
	}
	switch {
	case k.typ == guestfs.TypeDir:
		return nil, fmt.Errorf("ntfs: file %d: %w", ino, guestfs.ErrIsDir)
	case k.typ != guestfs.TypeRegular:
		return nil, fmt.Errorf("ntfs: file %d (type %#o) is not a regular file: %w", ino, k.typ, guestfs.ErrUnsupported)
	case k.unsupported != "":
		return nil, fmt.Errorf("ntfs: file %d is %s: %w", ino, k.unsupported, guestfs.ErrUnsupported)
	case n.si.attrs&faEncrypted != 0 || n.data != nil && n.data.encrypted():
		return nil, fmt.Errorf("ntfs: file %d is encrypted (EFS): %w", ino, guestfs.ErrUnsupported)
	}
	s := n.data
	if s == nil {
		s = &stream{}
	}
	return &file{fs: fs, s: s}, nil
}

func (f *file) Size() int64 { return f.s.size }

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("ntfs: negative offset")
	}
	if off >= f.s.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > f.s.size-off {
		n = int(f.s.size - off)
	}
	if err := f.fs.readStream(f.s, p[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// segment reports whether the bytes at off hold data or are a hole, and
// where that stretch ends: sparse runs, compression units with no
// cluster, and bytes past the initialized size are holes.
func (f *file) segment(off int64) (bool, int64, error) {
	s := f.s
	if !s.nonRes {
		return true, s.size, nil
	}
	if off >= s.initSize {
		return false, s.size, nil
	}
	shift := f.fs.g.clusterShift
	if s.compressed() {
		unitClusters := int64(1) << s.cuShift
		unitBytes := unitClusters << shift
		u := off / unitBytes
		allocated, _, err := s.unitAllocated(u*unitClusters, unitClusters)
		if err != nil {
			return false, 0, err
		}
		end := (u + 1) * unitBytes
		if allocated == 0 {
			// Skip the whole sparse run, in whole units.
			r := s.runs[s.findRun(u*unitClusters)]
			if e := ((r.vcn + r.length) / unitClusters) * unitBytes; e > end {
				end = e
			}
		}
		return allocated > 0, min(end, s.initSize), nil
	}
	i := s.findRun(off >> shift)
	if i < 0 {
		return false, 0, fmt.Errorf("ntfs: stream offset %d is not mapped: %w", off, guestfs.ErrCorrupt)
	}
	r := s.runs[i]
	return r.lcn >= 0, min((r.vcn+r.length)<<shift, s.initSize), nil
}

// NextData is the first offset at or after off that holds data.
func (f *file) NextData(off int64) (int64, bool, error) {
	for off < f.s.size {
		data, end, err := f.segment(off)
		if err != nil {
			return 0, false, err
		}
		if data {
			return off, true, nil
		}
		off = end
	}
	return 0, false, nil
}

// NextHole is the first offset at or after off in a hole; the end of the
// file counts as one.
func (f *file) NextHole(off int64) (int64, error) {
	for off < f.s.size {
		data, end, err := f.segment(off)
		if err != nil {
			return 0, err
		}
		if !data {
			return off, nil
		}
		off = end
	}
	return f.s.size, nil
}
