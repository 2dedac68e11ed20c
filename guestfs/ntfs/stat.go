package ntfs

import (
	"fmt"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Permission bits shown where WSL has not stored a mode ($LXMOD): those
// ntfs-3g shows without a user mapping when mounted with
// fmask=0133,dmask=0022; symlinks always 0777.
const (
	permDir  = 0o755
	permFile = 0o644
	permLink = 0o777
)

// Stat describes file ino.
func (fs *FS) Stat(ino uint64) (guestfs.Attr, error) {
	n, err := fs.node(ino)
	if err != nil {
		return guestfs.Attr{}, err
	}
	k, err := fs.kindOf(n)
	if err != nil {
		return guestfs.Attr{}, err
	}
	a := guestfs.Attr{
		Ino:   ino,
		Nlink: 1,
		Rdev:  k.rdev,
		Btime: ntfsTime(n.si.created),
		Mtime: ntfsTime(n.si.modified),
		Ctime: ntfsTime(n.si.mftChanged),
		Atime: ntfsTime(n.si.accessed),
		Flags: flagsOf(n),
	}
	perm := uint32(permFile)
	switch k.typ {
	case guestfs.TypeDir:
		perm = permDir
		if n.indexAlloc != nil {
			a.Size = n.indexAlloc.size
			a.Blocks = n.indexAlloc.alloc
		}
	case guestfs.TypeSymlink:
		perm = permLink
		a.Size = int64(len(k.target))
	}
	if k.typ != guestfs.TypeDir {
		a.Nlink = uint32(countLinks(n))
		if k.typ != guestfs.TypeSymlink && n.data != nil {
			a.Size = n.data.size
		}
		if n.data != nil && n.data.nonRes {
			a.Blocks = n.data.alloc
		}
	}
	if m, ok := lxUint32(n.ea, "$LXMOD"); ok && k.typ != guestfs.TypeSymlink {
		perm = m & 0o7777
	}
	a.Mode = k.typ | perm
	if v, ok := lxUint32(n.ea, "$LXUID"); ok {
		a.Uid = v
	}
	if v, ok := lxUint32(n.ea, "$LXGID"); ok {
		a.Gid = v
	}
	return a, nil
}

// countLinks counts a file's names, leaving out DOS aliases.
func countLinks(n *node) int {
	c := 0
	for _, fn := range n.names {
		if fn.ns != nsDOS {
			c++
		}
	}
	if c == 0 {
		c = 1
	}
	return c
}

// flagsOf maps the Windows attributes of $STANDARD_INFORMATION.
func flagsOf(n *node) guestfs.Flags {
	var f guestfs.Flags
	m := []struct {
		fa   uint32
		flag guestfs.Flags
	}{
		{faReadOnly, guestfs.FlagImmutable},
		{faHidden, guestfs.FlagHidden},
		{faSystem, guestfs.FlagSystem},
		{faArchive, guestfs.FlagArchive},
		{faSparse, guestfs.FlagSparse},
		{faCompressed, guestfs.FlagCompressed},
		{faEncrypted, guestfs.FlagEncrypted},
	}
	for _, x := range m {
		if n.si.attrs&x.fa != 0 {
			f |= x.flag
		}
	}
	if n.data != nil {
		if n.data.compressed() {
			f |= guestfs.FlagCompressed
		}
		if n.data.encrypted() {
			f |= guestfs.FlagEncrypted
		}
	}
	return f
}

// ntfsTime converts NTFS's 100 ns intervals since 1601-01-01 UTC.
func ntfsTime(t uint64) time.Time {
	const epochDelta = 11644473600 // seconds from 1601 to 1970
	return time.Unix(int64(t/1e7)-epochDelta, int64(t%1e7)*100).UTC()
}

// Readlink returns a symlink's target: see the package doc for how
// Windows targets are written.
func (fs *FS) Readlink(ino uint64) (string, error) {
	n, err := fs.node(ino)
	if err != nil {
		return "", err
	}
	k, err := fs.kindOf(n)
	if err != nil {
		return "", err
	}
	if k.typ != guestfs.TypeSymlink {
		return "", fmt.Errorf("ntfs: file %d: %w", ino, guestfs.ErrNotLink)
	}
	return k.target, nil
}
