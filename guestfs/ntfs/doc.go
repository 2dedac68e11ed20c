// Package ntfs reads NTFS volumes (versions 3.0 and 3.1: Windows 2000 to
// 11) from an io.ReaderAt, read-only, for the guest filesystems of a disk.
//
// # What it reads
//
// The boot sector's geometry; the $MFT, whose own runlist may continue in
// extension records; MFT records and index blocks with their update
// sequence arrays checked (a torn sector is ErrCorrupt); attributes in
// the base record or, through an $ATTRIBUTE_LIST, in extension records
// (which must name the base record back, so that lists cannot chain other
// files' records); resident and non-resident values, runlists, sparse
// runs (holes read as zeros, and files implement guestfs.Sparse), bytes
// past the initialized size (zeros), and LZNT1-compressed streams
// (compression units of 16 clusters). Directories are read through their
// $I30 index B+tree: ReadDir streams it in order, and Lookup descends it,
// comparing names through the volume's own $UpCase table (Unicode's
// simple upper case when that is unreadable, with a warning).
//
// # What it shows, where NTFS has no POSIX field
//
//   - Inode numbers are MFT record numbers (the root is 5); hard links (a
//     record's several $FILE_NAMEs) share one.
//   - Owner 0:0, and modes 0755 for directories, 0644 for files and special
//     files, 0777 for symlinks: what ntfs-3g shows without a user mapping
//     when mounted with fmask=0133,dmask=0022. Where WSL stored POSIX
//     metadata in the extended attributes $LXUID, $LXGID and $LXMOD, those
//     are shown instead.
//   - Link counts are the file's names leaving out DOS 8.3 aliases (ntfs-3g
//     shows the record's count, which counts an alias); directories have 1,
//     as on ntfs-3g, which find(1) takes as "not counted".
//   - Times come from $STANDARD_INFORMATION, to its 100 ns: creation is
//     Btime, modification Mtime, MFT change Ctime, access Atime.
//   - Flags map the Windows attributes: read-only is FlagImmutable, and
//     hidden, system, archive, sparse, compressed and encrypted their own.
//   - A directory's size is its index allocation's, and Blocks is the
//     bytes a stream occupies (a compressed or sparse stream's compressed
//     size; 0 for values resident in the MFT record).
//
// # Names
//
// Each name is a file's Win32 or POSIX name: DOS 8.3 aliases are never
// listed, though Lookup finds a file by its alias as Windows does. Lookup
// ignores case; where POSIX names differ only in case (ntfs-3g writes
// them), the one of exactly the asked case wins. Names are UTF-16 turned
// into UTF-8, an unpaired surrogate into the three-byte form of its code
// point (WTF-8) so that Lookup finds it again. Names holding '/' or NUL
// are left out. As ntfs-3g does by default, the metadata files of records
// 0 to 15 ($MFT, $Bitmap, $Extend, ...) are hidden from ReadDir and Lookup
// while other names beginning with '$' ($RECYCLE.BIN) are shown.
//
// # Symlinks and special files
//
// Reparse points of tag IO_REPARSE_TAG_SYMLINK and MOUNT_POINT (junctions)
// are symlinks; the target is the reparse data's substitute name,
// rendered so that it stays inside this volume:
//
//   - a relative symlink: its backslashes made slashes ("..\x" is "../x");
//   - a path on a drive ("\??\C:\dir\file", whatever the letter) or rooted
//     at one ("\dir\file"): relative to the link's directory, through the
//     volume's root ("../../dir/file" for a link two directories deep),
//     the directory being that of the link's first name. ntfs-3g writes
//     the same path from its mount point instead, and writes paths it
//     cannot find on the volume under .NTFS-3G/C:/;
//   - anything else (UNC paths, volume GUID paths): as stored, backslashes
//     made slashes ("/??/UNC/server/share").
//
// WSL's special files are read: IO_REPARSE_TAG_LX_SYMLINK (a symlink, its
// target as stored), AF_UNIX (a socket), LX_FIFO, LX_CHR and LX_BLK (the
// device number from the $LXDEV extended attribute). So are the Interix
// files ntfs-3g writes by default, as ntfs-3g reads them: a system file
// that is empty (a FIFO) or of one byte (a socket), unless hidden, or whose
// data starts with IntxLNK (a symlink), IntxCHR or IntxBLK (a device).
// Other reparse points (cloud files, say) leave the file or directory
// what it is, with the data it holds.
//
// # Alternate data streams
//
// Named $DATA streams are extended attributes "ntfs.stream.NAME" with the
// stream's bytes as value. Streams over 64 KiB (the Linux limit), those
// of encrypted files, and names holding NUL are left out.
//
// # What it refuses
//
// Encrypted (EFS) files, files compressed by the Windows Overlay Filter
// (WOF, "CompactOS") and deduplicated files list and stat, but Open
// returns ErrUnsupported: their data is not in their $DATA. It never
// writes and never replays the $LogFile: a volume marked dirty is read as
// it stands, with a warning in Info. Info's UUID is the volume serial
// number as blkid prints it (16 hex digits), its label $Volume's name.
//
// # Hostile volumes
//
// Every structure is checked against the volume before it is used: runs
// must lie inside the volume's clusters, a stream's runs cover at most
// 2^56 bytes in at most 2^20 runs, an attribute list at most 256 KiB,
// reparse data and extended attributes 64 KiB, compression units 1 MiB.
// Index walks load at most as many blocks as the index allocation holds
// and go at most 32 levels deep, so that a B+tree whose pointers loop
// ends in ErrCorrupt; parent chains (for link targets) end after 1024
// steps. Assembled files (4 MiB), index blocks (4 MiB) and decompressed
// units (1 MiB) are cached, each in a bounded LRU; files are immutable
// once assembled, so the FS is safe for concurrent use.
package ntfs
