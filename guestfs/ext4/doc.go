// Package ext4 reads ext2, ext3 and ext4 volumes, read-only, for the
// mount's files/ tree: parsed in the daemon from the volume's bytes, never
// by the host kernel.
//
// # What it reads
//
// Block sizes of 1 to 64 KiB; extent trees of any depth and ext2/ext3
// block maps with single, double and triple indirect blocks; linear,
// htree-indexed (legacy, half_md4 and tea hashes, signed or unsigned as
// the superblock says) and inline directories; inline files; 64-bit group
// descriptors, meta_bg, flex_bg, huge_file, large files; sparse files and
// unwritten extents (both read as zeros; the file implements
// guestfs.Sparse, and unwritten extents count as holes, as the kernel's
// SEEK_DATA sees them); nanosecond times with the epoch bits, the creation
// time (Attr.Btime), 32-bit owners, device numbers in both encodings, fast
// and slow symlinks; extended attributes in the inode, in an xattr block
// and in EA inodes (ea_inode), under the names the kernel lists (user., trusted.,
// security., gnu., and the POSIX ACLs converted from ext4's compact form
// to the form getxattr returns); the immutable, append-only and nodump
// flags.
//
// # Checksums
//
// On metadata_csum volumes it verifies the crc32c of everything it reads:
// superblock, inodes, extent tree blocks, directory leaves, htree index
// nodes and xattr blocks. A mismatch is an error wrapping
// guestfs.ErrCorrupt (a mismatching htree node makes Lookup scan the
// directory instead, with a warning). Group descriptor checksums only warn,
// as on the kernel's read-only mounts. The older gdt_csum (crc16) is not
// checked. Bitmaps and the journal are never read.
//
// # What it refuses or leaves out
//
// Open refuses a volume with an incompatible feature it does not know
// (compression, dirdata, journal_dev, unknown bits) with ErrUnsupported
// naming them, as the kernel refuses to mount it, and a volume whose block
// count exceeds its size. A journal that needs recovery is not replayed:
// the volume is read as it stands and Info.Warnings says so. Encrypted
// files, directories and symlinks are shown (FlagEncrypted) but not read:
// ErrUnsupported. In casefolded directories Lookup matches names exactly.
// Directories are listed in their on-disk block order, not the kernel's
// hash order.
//
// # Hostile volumes
//
// Every block number is checked against the volume before it is read;
// extent descents are bounded by the tree's depth (each level exactly one
// less than its parent, at most five), block maps by their fixed three
// levels, htree descents by their stated levels (at most three) and leaf
// chains by the directory's size; holes of any size are stepped over in
// one step; SEEK_DATA/SEEK_HOLE answers take at most 65,536 mapping steps
// (past that: data, no hole, which reads the same bytes). One Xattrs call
// copies at most 4 MiB. Metadata is cached in bounded LRU caches (up to
// 4096 parsed inodes, 8 MiB at most; 4 MiB of inode table, directory,
// index and xattr blocks). File data is never cached: each ReadAt reads
// each extent's part in one read of the volume.
package ext4
