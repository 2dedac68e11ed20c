package xfs

import (
	"fmt"
	"io"
	"math"

	"github.com/ovfmount/ovfmount/guestfs"
)

// file is an opened regular file.
type file struct {
	f  *FS
	ip *inode
}

var (
	_ guestfs.File   = (*file)(nil)
	_ guestfs.Sparse = (*file)(nil)
)

// Open opens a regular file's data.
func (f *FS) Open(ino uint64) (guestfs.File, error) {
	ip, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	switch uint32(ip.mode) & guestfs.TypeMask {
	case guestfs.TypeRegular:
	case guestfs.TypeDir:
		return nil, fmt.Errorf("xfs: inode %d: %w", ino, guestfs.ErrIsDir)
	default:
		return nil, fmt.Errorf("xfs: inode %d: not a regular file: %w", ino, guestfs.ErrUnsupported)
	}
	if ip.flags&diflagRealtime != 0 {
		return nil, fmt.Errorf("xfs: inode %d: data on the realtime volume: %w", ino, guestfs.ErrUnsupported)
	}
	return &file{f: f, ip: ip}, nil
}

func (fl *file) Size() int64 { return fl.ip.size }

// blkOff is file block b's byte offset, saturating instead of overflowing
// (a 54-bit block offset times a 64 KiB block does not fit in 64 bits).
func (f *FS) blkOff(b uint64) int64 {
	if b > uint64(math.MaxInt64)>>f.sb.blockLog {
		return math.MaxInt64
	}
	return int64(b << f.sb.blockLog)
}

// ReadAt reads the file's bytes: each run of a mapped extent with one read
// of the volume, holes and unwritten extents as zeros.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	f, size := fl.f, fl.ip.size
	if off < 0 {
		return 0, fmt.Errorf("xfs: inode %d: negative offset %d", fl.ip.ino, off)
	}
	if off >= size {
		return 0, io.EOF
	}
	end := size
	if int64(len(p)) < size-off {
		end = off + int64(len(p))
	}
	pos := off
	for pos < end {
		e, ok, next, err := f.mapBlock(fl.ip, false, uint64(pos)>>f.sb.blockLog)
		if err != nil {
			return int(pos - off), err
		}
		buf := p[pos-off : end-off]
		if !ok || e.unwritten {
			stop := f.blkOff(next)
			if ok {
				stop = f.blkOff(e.off + e.len)
			}
			if stop-pos < int64(len(buf)) {
				buf = buf[:stop-pos]
			}
			clear(buf)
			pos += int64(len(buf))
			continue
		}
		if stop := f.blkOff(e.off + e.len); stop-pos < int64(len(buf)) {
			buf = buf[:stop-pos]
		}
		phys := int64(e.blk)<<f.sb.blockLog + (pos - f.blkOff(e.off))
		if _, err := f.r.ReadAt(buf, phys); err != nil {
			return int(pos - off), fmt.Errorf("xfs: inode %d: reading offset %d: %w", fl.ip.ino, pos, err)
		}
		pos += int64(len(buf))
	}
	if end-off < int64(len(p)) {
		return int(end - off), io.EOF
	}
	return len(p), nil
}

// NextData is the first offset at or after off that holds written data.
// Unwritten extents count as holes, as SEEK_DATA sees them on a volume
// nobody has written since.
func (fl *file) NextData(off int64) (int64, bool, error) {
	f, size := fl.f, fl.ip.size
	if off < 0 {
		off = 0
	}
	for off < size {
		e, ok, next, err := f.mapBlock(fl.ip, false, uint64(off)>>f.sb.blockLog)
		if err != nil {
			return 0, false, err
		}
		switch {
		case ok && !e.unwritten:
			return off, true, nil
		case ok:
			off = f.blkOff(e.off + e.len)
		default:
			off = f.blkOff(next)
		}
	}
	return 0, false, nil
}

// NextHole is the first offset at or after off that is a hole; the end of
// the file counts as one.
func (fl *file) NextHole(off int64) (int64, error) {
	f, size := fl.f, fl.ip.size
	if off < 0 {
		off = 0
	}
	for off < size {
		e, ok, _, err := f.mapBlock(fl.ip, false, uint64(off)>>f.sb.blockLog)
		if err != nil {
			return 0, err
		}
		if !ok || e.unwritten {
			return off, nil
		}
		off = f.blkOff(e.off + e.len)
	}
	return size, nil
}
