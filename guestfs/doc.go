// Package guestfs is the one interface through which the mount reads the
// filesystems inside a disk: a guest's ext4, XFS, NTFS, FAT or ISO 9660,
// parsed in the daemon from a volume's bytes, never by the host kernel.
//
// Each filesystem lives in its own subpackage (guestfs/ext4, guestfs/xfs,
// ...), exporting Probe, a cheap check of the magic numbers, and Open,
// which returns an [FS]. Package guestfs/probe picks the right one for a
// volume.
//
// # What an FS promises
//
//   - It reads only through the io.ReaderAt it was opened on, and never
//     past the size it was given: a volume's bytes come from the disk's
//     checked path, and an error there (a digest mismatch, a damaged
//     grain) comes back as an error, never as zeros.
//   - It is safe for concurrent use: FUSE serves requests in parallel.
//   - It takes hostile input. Every allocation is bounded by what the
//     volume can hold; directory cycles, extent loops, a directory of a
//     million entries and a symlink pointing anywhere neither hang nor
//     exhaust memory; it never panics. A structure that does not parse
//     is an error wrapping [ErrCorrupt] that names what and where.
//   - It shows what the guest stores: sizes, the POSIX mode (type and
//     permission bits), owners, nanosecond times, link targets as text
//     (never followed), hard links as one inode number, device nodes,
//     FIFOs and sockets as such. Where the format has no such field (FAT,
//     NTFS, ISO 9660 without Rock Ridge), the package says in its doc
//     what it shows instead.
//
// # What it refuses
//
// It never writes, never replays a journal (a volume that needs replay is
// read as it stands, and Info.Warnings says so), and never follows a
// symlink: resolving paths is the caller's business.
package guestfs
