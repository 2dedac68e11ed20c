// Package fat reads FAT12, FAT16 and FAT32 volumes with VFAT long names:
// EFI system partitions, boot partitions, the FAT images of appliances.
//
// # What it reads
//
//   - The boot sector (BPB), with the FAT type chosen as Linux chooses it:
//     a zero 16-bit FAT size means FAT32, else up to 4084 clusters is
//     FAT12 and more is FAT16. On FAT32 the root directory is the cluster
//     chain the BPB names, and the FAT in use is the one the mirroring
//     flags name; FSInfo's hints are ignored (a reader needs none).
//   - Long names: slots are gathered as Linux's fat_parse_long does, and a
//     long name whose checksum does not match its 8.3 entry (left behind by
//     a program that renamed the short entry) is ignored, the 8.3 name
//     being shown instead. Short names are decoded from code page 437
//     (Linux's default codepage=) and lowercased per NT's case bits (byte
//     12: base 0x08, extension 0x10), as Linux's vfat shows them with its
//     default shortname=mixed. A leading 0x05 stands for 0xE5.
//   - Directories are read up to their end mark (an entry whose first byte
//     is 0), as the FAT specification, mtools and Windows read them; Linux
//     reads on past it, which only matters on damaged volumes. Deleted
//     entries, "." and "..", long-name slots and the volume label are not
//     listed, nor names a hostile volume makes unusable (empty, or with
//     "/" or NUL).
//   - Lookup ignores case by Unicode simple case folding (what
//     strings.EqualFold does) and matches both the long and the 8.3 name,
//     as Linux's vfat does: "README.TXT" finds "readme.txt", and
//     "PROGRA~1" finds "Program Files".
//   - Info: Type "vfat"; Label as blkid (util-linux 2.38) reports LABEL:
//     the root directory's volume-label entry unless it is "NO NAME" (the
//     boot sector's copy, blkid's LABEL_FATBOOT, is not used; when it
//     differs, Info.Warnings says so); UUID the volume serial number as
//     blkid prints it,
//     four hex digits, a hyphen and four more ("1A2B-3C4D"); BlockSize the cluster size.
//
// # What FAT lacks, and what is shown instead
//
//   - Owners and modes: uid 0 and gid 0; directories 0755, files 0644, or
//     0444 with the read-only attribute (Linux's vfat would show 0755 for
//     files under its default umask; executability is not something FAT
//     records, so it is not claimed). The attributes are Attr.Flags:
//     read-only is FlagImmutable, and hidden, system and archive their
//     own flags. Read-only on a directory sets the flag only (Windows uses
//     it to mark customised folders).
//   - Inode numbers: the volume byte offset of the file's 8.3 directory
//     entry, as Linux's vfat computes its i_pos; the root is 1. They are
//     stable across mounts and unique (FAT has no hard links); Stat reads
//     the entry back from that offset.
//   - Times: FAT stores local time without a zone. They are read as UTC,
//     which is what Linux's vfat shows under its default (tz= unset and a
//     kernel time zone of UTC, the usual case) and what mtools and
//     sleuthkit show with TZ=UTC. Mtime is the write time (2 s
//     resolution), Btime the creation time with its 10 ms field, Atime the
//     access date (at midnight), and Ctime, which FAT does not keep, is
//     the write time, as on Linux. A zero date is "not recorded": the zero
//     time. The root directory has no times.
//   - Sizes: a directory's size is its cluster chain's bytes (the fixed
//     root's entries on FAT12/16), as Linux shows it; Blocks is the size
//     rounded up to whole clusters, as Linux computes it. Nlink is 1 for
//     files and 2 plus the subdirectories for directories.
//   - No symlinks, device nodes, extended attributes or holes.
//
// # Hostile volumes
//
// A cluster chain is followed at most as many steps as the volume has
// clusters, and a chain that returns to a cluster it visited (found with
// Brent's algorithm) is corrupt, as is a free or bad cluster inside a
// chain or a FAT entry naming a cluster past the last. A file whose chain
// is shorter than its size reads up to where the chain ends and then
// fails with ErrCorrupt (Linux returns EIO there). A directory that names
// an ancestor's cluster shows that ancestor's entries, with the same inode
// numbers, so a walker sees the loop as a directory reached twice. Parsed
// directories, FAT32 table chunks and cluster runs are cached in LRUs of
// a few MiB; a directory too large for the cache is streamed.
package fat
