package ntfs

import (
	"fmt"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

// ReadDir calls fn for each name in directory dir, in the index's order
// (Windows' upper-case collation), streaming through the B+tree. DOS 8.3
// aliases, the metadata files of records 0-15 and names no POSIX path can
// hold are left out.
func (fs *FS) ReadDir(dir uint64, fn func(guestfs.DirEntry) error) error {
	n, err := fs.dirNode(dir)
	if err != nil {
		return err
	}
	ix, err := fs.openIndex(n)
	if err != nil {
		return err
	}
	it, err := ix.iter(nil)
	if err != nil {
		return err
	}
	for {
		e, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		if de, show := entryOf(&e); show && e.ns() != nsDOS {
			if err := fn(de); err != nil {
				return err
			}
		}
	}
}

// entryOf makes a directory entry of an index entry; false for those no
// listing shows.
func entryOf(e *ientry) (guestfs.DirEntry, bool) {
	if e.ref < fileFirstUser {
		return guestfs.DirEntry{}, false
	}
	name := decodeName(e.name())
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return guestfs.DirEntry{}, false
	}
	de := guestfs.DirEntry{Name: name, Ino: e.ref}
	fa := e.fileAttrs()
	switch {
	case fa&faReparse != 0:
		// A symlink, junction or WSL special file: Stat tells.
	case fa&faDupDir != 0:
		de.Type = guestfs.TypeDir
	case fa&faSystem == 0:
		de.Type = guestfs.TypeRegular
	}
	return de, true
}

// Lookup finds a name in directory dir through its index, ignoring case
// as Windows does; where names differ only in case (POSIX names ntfs-3g
// wrote), the one of exactly this case wins. A DOS 8.3 alias finds its
// file too.
func (fs *FS) Lookup(dir uint64, name string) (guestfs.DirEntry, error) {
	n, err := fs.dirNode(dir)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	notExist := fmt.Errorf("ntfs: directory %d: %q: %w", dir, name, guestfs.ErrNotExist)
	u, ok := encodeName(name)
	if !ok || len(u) == 0 || len(u) > 255 || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return guestfs.DirEntry{}, notExist
	}
	ix, err := fs.openIndex(n)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	it, err := ix.iter(u)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	var found *guestfs.DirEntry
	for {
		e, ok, err := it.next()
		if err != nil {
			return guestfs.DirEntry{}, err
		}
		if !ok || fs.up.compare(u, e.name()) != 0 {
			break
		}
		de, show := entryOf(&e)
		if !show {
			continue
		}
		if equalExact(u, e.name()) {
			return de, nil
		}
		if found == nil {
			found = &de
		}
	}
	if found != nil {
		return *found, nil
	}
	return guestfs.DirEntry{}, notExist
}
