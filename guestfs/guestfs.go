package guestfs

import (
	"errors"
	"io"
	"io/fs"
	"time"
)

// Sentinel errors. Filesystems wrap them with what and where:
// fmt.Errorf("ext4: inode %d: extent tree depth %d: %w", ino, d, ErrCorrupt).
var (
	// ErrNotExist: no such name in a directory, or no such inode.
	ErrNotExist = fs.ErrNotExist
	// ErrNotDir: a directory operation on something that is not one.
	ErrNotDir = errors.New("not a directory")
	// ErrIsDir: Open of a directory.
	ErrIsDir = errors.New("is a directory")
	// ErrNotLink: Readlink of something that is not a symlink.
	ErrNotLink = errors.New("not a symlink")
	// ErrCorrupt: a structure of the volume does not parse or points
	// outside it.
	ErrCorrupt = errors.New("corrupt filesystem")
	// ErrUnsupported: a feature the reader does not implement (an
	// encrypted file, say). The rest of the volume stays readable.
	ErrUnsupported = errors.New("unsupported feature")
	// ErrNotFS: Open was given a volume that is not of its type.
	ErrNotFS = errors.New("not a filesystem of this type")
)

// POSIX file type bits of Attr.Mode and DirEntry.Type, as in st_mode.
const (
	TypeMask    = 0o170000
	TypeSocket  = 0o140000
	TypeSymlink = 0o120000
	TypeRegular = 0o100000
	TypeBlock   = 0o060000
	TypeDir     = 0o040000
	TypeChar    = 0o020000
	TypeFIFO    = 0o010000
)

// Attr is what stat shows of a file.
type Attr struct {
	// Ino is the file's number, unique within the filesystem; hard links
	// share it. Filesystems without inode numbers make stable ones.
	Ino uint64
	// Mode is st_mode: the type bits (TypeMask) and the permission bits
	// with set-uid, set-gid and sticky (0o7777), as the guest stores them.
	Mode  uint32
	Nlink uint32
	Uid   uint32
	Gid   uint32
	// Size is the length in bytes: a symlink's is its target's length.
	Size int64
	// Blocks is the bytes the file occupies on the volume (st_blocks*512);
	// -1 when unknown.
	Blocks int64
	// Rdev is a device node's number, in Linux's encoding
	// (unix.Mkdev(major, minor)).
	Rdev uint64
	// Times, to the nanosecond where the format keeps them; zero when it
	// keeps none.
	Atime, Mtime, Ctime, Btime time.Time
	// Flags are the guest's file flags (FlagImmutable, ...).
	Flags Flags
}

// Flags are a file's attribute flags, as lsattr and Windows show them.
type Flags uint32

const (
	FlagImmutable  Flags = 1 << iota // ext4/XFS immutable, NTFS/FAT read-only
	FlagAppend                       // append only
	FlagNoDump                       // not to be dumped
	FlagCompressed                   // stored compressed (NTFS)
	FlagSparse                       // sparse (NTFS)
	FlagHidden                       // hidden (FAT, NTFS)
	FlagSystem                       // system (FAT, NTFS)
	FlagArchive                      // archive bit (FAT, NTFS)
	FlagEncrypted                    // encrypted: content not readable
)

var flagNames = []string{"immutable", "append", "nodump", "compressed", "sparse", "hidden", "system", "archive", "encrypted"}

// String names the flags set, comma-separated, in a fixed order.
func (f Flags) String() string {
	s := ""
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			if s != "" {
				s += ","
			}
			s += n
		}
	}
	return s
}

// DirEntry is one name in a directory.
type DirEntry struct {
	Name string
	Ino  uint64
	// Type is the type bits of the file's mode (TypeMask), or 0 when the
	// directory does not record it (then Stat tells).
	Type uint32
}

// Xattr is an extended attribute under its guest name: "user.comment",
// "security.selinux", "system.posix_acl_access" as Linux names them, or
// for NTFS alternate data streams "ntfs.stream.NAME".
type Xattr struct {
	Name  string
	Value []byte
}

// Info describes a filesystem.
type Info struct {
	Type      string // "ext4", "xfs", "ntfs", "vfat", "iso9660", ...
	Label     string
	UUID      string // as blkid prints it
	BlockSize int
	// Size is the bytes of the volume the filesystem spans.
	Size int64
	// Warnings are what the reader tolerated: a journal that needs
	// replay, features it ignores, a backup structure that disagrees.
	Warnings []string
}

// FS is an opened filesystem. Every method is safe for concurrent use.
type FS interface {
	Info() Info
	// Root is the root directory's inode number.
	Root() uint64
	Stat(ino uint64) (Attr, error)
	// ReadDir calls fn for each entry of a directory, leaving out "." and
	// "..", in the directory's own order, and stops with fn's error.
	ReadDir(dir uint64, fn func(DirEntry) error) error
	// Lookup finds a name in a directory: ErrNotExist when it is not
	// there. Names are matched as the filesystem matches them (FAT and
	// NTFS ignore case, the others do not).
	Lookup(dir uint64, name string) (DirEntry, error)
	// Open opens a regular file's data.
	Open(ino uint64) (File, error)
	// Readlink returns a symlink's target, as stored.
	Readlink(ino uint64) (string, error)
	// Xattrs lists a file's extended attributes with their values; values
	// larger than 64 KiB (the Linux limit) are left out.
	Xattrs(ino uint64) ([]Xattr, error)
}

// File is an opened regular file.
type File interface {
	// ReadAt reads the file's bytes; holes read as zeros, and a read at or
	// past Size returns io.EOF.
	io.ReaderAt
	Size() int64
}

// Sparse is a File that knows its holes, for SEEK_DATA and SEEK_HOLE.
type Sparse interface {
	// NextData is the first offset at or after off holding data (false:
	// none before the end); NextHole the first that is a hole (the end
	// counts as one).
	NextData(off int64) (int64, bool, error)
	NextHole(off int64) (int64, error)
}
