// Package probe recognises the filesystem on a volume by its magic
// numbers and opens it with the right reader of guestfs: the one place
// that knows which filesystems the mount reads.
package probe

import (
	"io"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/ext4"
	"github.com/ovfmount/ovfmount/guestfs/fat"
	"github.com/ovfmount/ovfmount/guestfs/iso9660"
	"github.com/ovfmount/ovfmount/guestfs/ntfs"
	"github.com/ovfmount/ovfmount/guestfs/xfs"
)

// format is one filesystem the mount reads.
type format struct {
	name  string
	probe func(io.ReaderAt, int64) bool
	open  func(io.ReaderAt, int64) (guestfs.FS, error)
}

// formats are tried in this order. Those with a magic number at a fixed
// place come first; FAT, recognised by the plausibility of its boot
// sector, comes last, so that a boot sector another filesystem also has
// (NTFS's, an ISO's hybrid MBR) never reads as FAT.
var formats = []format{
	{"ext4", ext4.Probe, func(r io.ReaderAt, n int64) (guestfs.FS, error) { return ext4.Open(r, n) }},
	{"xfs", xfs.Probe, func(r io.ReaderAt, n int64) (guestfs.FS, error) { return xfs.Open(r, n) }},
	{"ntfs", ntfs.Probe, func(r io.ReaderAt, n int64) (guestfs.FS, error) { return ntfs.Open(r, n) }},
	{"iso9660", iso9660.Probe, func(r io.ReaderAt, n int64) (guestfs.FS, error) { return iso9660.Open(r, n) }},
	{"vfat", fat.Probe, func(r io.ReaderAt, n int64) (guestfs.FS, error) { return fat.Open(r, n) }},
}

// Open opens the filesystem on a volume of size bytes: guestfs.ErrNotFS
// when none it reads is there, or the reader's error when one is there
// but does not open.
func Open(r io.ReaderAt, size int64) (guestfs.FS, error) {
	for _, f := range formats {
		if f.probe(r, size) {
			return f.open(r, size)
		}
	}
	return nil, guestfs.ErrNotFS
}
