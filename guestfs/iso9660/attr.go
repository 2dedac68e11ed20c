package iso9660

import (
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Stat describes a file: from Rock Ridge where the volume has it, else
// with the defaults the package doc gives.
func (fs *FS) Stat(ino uint64) (guestfs.Attr, error) {
	n, err := fs.node(ino)
	if err != nil {
		return guestfs.Attr{}, err
	}
	t := n.typ()
	a := guestfs.Attr{
		Ino:   n.ino,
		Mode:  t | 0o555,
		Nlink: 1,
		Size:  n.size,
		Mtime: n.date, Atime: n.date, Ctime: n.date,
	}
	for _, e := range n.extents {
		a.Blocks += (e.n + fs.blockSize - 1) / fs.blockSize * fs.blockSize
	}
	if n.flags&flagHidden != 0 {
		a.Flags |= guestfs.FlagHidden
	}
	rr := n.rr
	if rr == nil {
		return a, nil
	}
	if rr.px {
		a.Mode = t | rr.mode&0o7777
		a.Nlink = max(rr.nlink, 1)
		a.Uid, a.Gid = rr.uid, rr.gid
	}
	switch t {
	case guestfs.TypeSymlink:
		a.Size, a.Blocks = int64(len(rr.target)), 0
	case guestfs.TypeChar, guestfs.TypeBlock:
		a.Rdev = rr.rdev
		a.Size, a.Blocks = 0, 0
	case guestfs.TypeFIFO, guestfs.TypeSocket:
		a.Size, a.Blocks = 0, 0
	}
	// TF: creation is the birth time; Linux shows it as the change time
	// when the record has no attribute-change time (some writers put
	// ctime there), and so does this package.
	if rr.tf&tfCreate != 0 {
		a.Btime, a.Ctime = rr.btime, rr.btime
	}
	if rr.tf&tfModify != 0 {
		a.Mtime = rr.mtime
	}
	if rr.tf&tfAccess != 0 {
		a.Atime = rr.atime
	}
	if rr.tf&tfAttributes != 0 {
		a.Ctime = rr.ctime
	}
	return a, nil
}

// Readlink returns a Rock Ridge symlink's target (SL).
func (fs *FS) Readlink(ino uint64) (string, error) {
	n, err := fs.node(ino)
	if err != nil {
		return "", err
	}
	if n.typ() != guestfs.TypeSymlink {
		return "", fmt.Errorf("iso9660: inode %d: %w", ino, guestfs.ErrNotLink)
	}
	if !n.rr.sl {
		return "", fmt.Errorf("iso9660: inode %d: a symlink without an SL entry: %w", ino, guestfs.ErrCorrupt)
	}
	return n.rr.target, nil
}

// Xattrs: ISO 9660 has none the package reads (Rock Ridge AL/AA entries,
// xorriso's ACLs and xattrs, are not read).
func (fs *FS) Xattrs(ino uint64) ([]guestfs.Xattr, error) {
	if _, err := fs.node(ino); err != nil {
		return nil, err
	}
	return nil, nil
}
