package fat

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
)

// fatTime converts a FAT date and time (local time of the writer, with no
// zone) to a time, read as UTC; cs adds hundredths of a second (0-199, the
// creation time's 10 ms field). A zero date means "not recorded" and gives
// the zero time. Out-of-range fields are carried over as Linux's
// fat_time_fat2unix does arithmetically (month and day 0 count as 1).
func fatTime(date, tm uint16, cs byte) time.Time {
	if date == 0 {
		return time.Time{}
	}
	month := max(1, int(date>>5&0xF))
	day := max(1, int(date&0x1F))
	secs := int(tm>>11)*3600 + int(tm>>5&0x3F)*60 + int(tm&0x1F)*2
	t := time.Date(1980+int(date>>9), time.Month(month), day, 0, 0, 0, 0, time.UTC)
	return t.Add(time.Duration(secs)*time.Second + time.Duration(cs)*10*time.Millisecond)
}

// Stat describes a file from its 8.3 entry; the root from the volume.
func (fs *FS) Stat(ino uint64) (guestfs.Attr, error) {
	if ino == rootIno {
		d, err := fs.dir(fs.rootKey())
		if err != nil {
			return guestfs.Attr{}, err
		}
		return guestfs.Attr{Ino: rootIno, Mode: guestfs.TypeDir | 0o755, Nlink: 2 + d.nsub, Size: d.bytes, Blocks: d.bytes}, nil
	}
	e, err := fs.entryAt(ino)
	if err != nil {
		return guestfs.Attr{}, err
	}
	le16 := func(o int) uint16 { return binary.LittleEndian.Uint16(e[o:]) }
	a := guestfs.Attr{
		Ino:   ino,
		Nlink: 1,
		Btime: fatTime(le16(16), le16(14), e[13]),
		Atime: fatTime(le16(18), 0, 0),
		Mtime: fatTime(le16(24), le16(22), 0),
		Flags: attrFlags(e[11]),
	}
	// Linux's vfat keeps no change time and shows the modification time.
	a.Ctime = a.Mtime
	if e[11]&attrDir != 0 {
		a.Mode = guestfs.TypeDir | 0o755
		a.Nlink = 2
		if c := fs.firstCluster(e); c != 0 {
			// (Without a cluster the directory is damaged: Stat shows it
			// empty and ReadDir says why.)
			d, err := fs.dir(dirKey(c))
			if err != nil {
				return guestfs.Attr{}, fmt.Errorf("fat: inode %d: %w", ino, err)
			}
			a.Nlink += d.nsub
			a.Size, a.Blocks = d.bytes, d.bytes
		}
		return a, nil
	}
	a.Mode = guestfs.TypeRegular | 0o644
	if e[11]&attrReadOnly != 0 {
		a.Mode = guestfs.TypeRegular | 0o444
	}
	a.Size = int64(binary.LittleEndian.Uint32(e[28:]))
	// As Linux: the size rounded up to whole clusters, not the chain.
	a.Blocks = (a.Size + fs.clusterSize - 1) / fs.clusterSize * fs.clusterSize
	return a, nil
}

func attrFlags(at byte) guestfs.Flags {
	var f guestfs.Flags
	for _, m := range []struct {
		bit  byte
		flag guestfs.Flags
	}{{attrReadOnly, guestfs.FlagImmutable}, {attrHidden, guestfs.FlagHidden}, {attrSystem, guestfs.FlagSystem}, {attrArchive, guestfs.FlagArchive}} {
		if at&m.bit != 0 {
			f |= m.flag
		}
	}
	return f
}

func (fs *FS) rootKey() dirKey {
	if fs.bits == 32 {
		return dirKey(fs.rootCluster)
	}
	return 0
}

// dirOf is the directory inode ino names.
func (fs *FS) dirOf(ino uint64) (dirKey, error) {
	if ino == rootIno {
		return fs.rootKey(), nil
	}
	e, err := fs.entryAt(ino)
	if err != nil {
		return 0, err
	}
	if e[11]&attrDir == 0 {
		return 0, fmt.Errorf("fat: inode %d: %w", ino, guestfs.ErrNotDir)
	}
	c := fs.firstCluster(e)
	if c == 0 {
		// Cluster 0 means the root only in "..": a subdirectory without
		// clusters has no "." entry and is damaged.
		return 0, fmt.Errorf("fat: directory inode %d has no cluster: %w", ino, guestfs.ErrCorrupt)
	}
	return dirKey(c), nil
}

func entryType(attr byte) uint32 {
	if attr&attrDir != 0 {
		return guestfs.TypeDir
	}
	return guestfs.TypeRegular
}

// ReadDir lists a directory in its on-disk order, without ".", "..",
// deleted entries, long-name slots and the volume label.
func (fs *FS) ReadDir(ino uint64, fn func(guestfs.DirEntry) error) error {
	k, err := fs.dirOf(ino)
	if err != nil {
		return err
	}
	d, err := fs.dir(k)
	if err != nil {
		return err
	}
	emit := func(e *dentry) error {
		return fn(guestfs.DirEntry{Name: e.name, Ino: uint64(e.pos), Type: entryType(e.attr)})
	}
	if d.index != nil {
		for i := range d.ents {
			if err := emit(&d.ents[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return fs.scan(k, d.runs, emit)
}

// Lookup matches name against each entry's long name and its 8.3 name,
// ignoring case by Unicode simple case folding.
func (fs *FS) Lookup(ino uint64, name string) (guestfs.DirEntry, error) {
	k, err := fs.dirOf(ino)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	d, err := fs.dir(k)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	key := foldKey(name)
	if d.index != nil {
		if i, ok := d.index[key]; ok {
			e := &d.ents[i]
			return guestfs.DirEntry{Name: e.name, Ino: uint64(e.pos), Type: entryType(e.attr)}, nil
		}
		return guestfs.DirEntry{}, fmt.Errorf("fat: %q: %w", name, guestfs.ErrNotExist)
	}
	var found *guestfs.DirEntry
	err = fs.scan(k, d.runs, func(e *dentry) error {
		if foldKey(e.name) == key || foldKey(e.short) == key {
			found = &guestfs.DirEntry{Name: e.name, Ino: uint64(e.pos), Type: entryType(e.attr)}
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return guestfs.DirEntry{}, err
	}
	if found == nil {
		return guestfs.DirEntry{}, fmt.Errorf("fat: %q: %w", name, guestfs.ErrNotExist)
	}
	return *found, nil
}

// Readlink: FAT has no symlinks.
func (fs *FS) Readlink(ino uint64) (string, error) {
	if _, err := fs.Stat(ino); err != nil {
		return "", err
	}
	return "", fmt.Errorf("fat: inode %d: %w", ino, guestfs.ErrNotLink)
}

// Xattrs: FAT keeps none (its attribute bits are Attr.Flags).
func (fs *FS) Xattrs(ino uint64) ([]guestfs.Xattr, error) {
	if ino != rootIno {
		if _, err := fs.entryAt(ino); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
