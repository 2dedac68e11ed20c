// Package xfs reads XFS filesystems (v4 and v5 superblocks) read-only,
// for the guestfs interface: a guest's XFS parsed in the daemon from the
// volume's bytes.
//
// # What it reads
//
//   - The primary superblock: block, sector and inode sizes (256 to 2048
//     bytes), allocation-group geometry, label, UUID (sb_uuid, as blkid
//     prints it; with the meta_uuid feature the metadata UUID differs and
//     is not shown).
//   - Inodes v1, v2 (v4 filesystems) and v3 (v5): mode, owners, link
//     count, size, nanosecond times, the v3 creation time as Btime, the
//     bigtime encoding, 64-bit extent counts (nrext64), and the immutable,
//     append-only and nodump flags. Blocks is di_nblocks in bytes.
//   - Data forks in every format: local (short-form directories, inline
//     symlinks), extent lists, and bmbt B+trees of any depth, searched from
//     the root per lookup so that no extent list is held in memory.
//     Unwritten (preallocated) extents read as zeros and count as holes
//     for SEEK_DATA/SEEK_HOLE ([guestfs.Sparse]).
//   - Directories in every form: short-form, block, leaf, node and B+tree,
//     with directory blocks of several filesystem blocks, v4 and v5
//     headers, with or without the ftype byte. ReadDir streams one
//     directory block at a time; Lookup goes through the hash index (the
//     block's own, the leaf block, or the dabtree), and scans only
//     short-form directories, which live in the inode and have no index
//     (a larger directory without one is corrupt).
//   - Symlinks inline or in blocks (v5 per-extent headers), device nodes
//     (the on-disk System V number converted to Linux's encoding), FIFOs,
//     sockets. Ino is the XFS inode number, as the kernel shows it.
//   - Extended attributes in short-form, leaf, node and B+tree attribute
//     forks, with values in the leaf or in remote blocks: user., trusted.
//     (the root flag) and security. (the secure flag). An ACL, which XFS
//     keeps as trusted.SGI_ACL_FILE or SGI_ACL_DEFAULT in its own format,
//     is listed as the kernel lists it: both under that name, as stored,
//     and as system.posix_acl_access or _default in the Linux xattr
//     format. Parent pointers and incomplete attributes are hidden.
//
// # Checks
//
// On v5 filesystems the CRC32C of every metadata block read is verified
// (superblock, inodes, bmbt blocks, directory and attribute blocks, remote
// symlink and attribute-value blocks), with the owner and block number
// each header records; a mismatch is [guestfs.ErrCorrupt], as the kernel
// refuses such a block. File data has no checksum in XFS. Every pointer is
// checked against the allocation groups and the volume before it is
// followed; B+tree descents must fall one level per step, sibling chains
// are followed with a record of the blocks seen, and the dabtree's depth
// is capped at XFS's own limit, so damaged images give errors, not hangs.
//
// A log that needs recovery (found as the kernel finds it: the last
// record before the log head is not an unmount record) is never replayed:
// the volume is read as it stands, as `mount -o norecovery` shows it, and
// Info.Warnings says so.
//
// # What it refuses
//
// Open fails with [guestfs.ErrUnsupported], naming them, on incompatible
// features it does not know (as the kernel refuses them), and on metadir
// and zoned filesystems, ASCII case-insensitive names and version 1
// directories. Files on a realtime volume (a separate device) cannot be
// opened. Quotas and project IDs are not shown.
package xfs
