// Package iso9660 reads ISO 9660 volumes with their Rock Ridge and Joliet
// extensions: installation media, cloud-init seed images and the ISO
// members of appliances.
//
// # Which tree, which names
//
// As Linux's isofs does by default: when the root directory's "." record
// starts with SUSP's SP entry, the primary tree is read with its Rock
// Ridge entries (a Joliet tree is then ignored, and Info.Warnings says
// so); otherwise a Joliet supplementary tree (UCS-2 names, escape
// sequences %/@, %/C or %/E) is read when there is one; otherwise the
// primary tree's plain names. The first session's descriptors are read
// (no multi-session table of contents), and the El Torito boot record is
// ignored.
//
//   - Rock Ridge names (NM, with continuation) are used as stored; a
//     record without NM falls back to the plain name.
//   - Joliet names: a trailing ";1" is dropped, then trailing dots, as
//     Linux does (xorriso keeps such dots).
//   - Plain names as Linux shows them with its default map=normal:
//     lowercased, a trailing ";1" (and a "." just before it) dropped, other
//     ";" turned into ".".
//   - Lookup is exact with Rock Ridge, and ignores case (Unicode simple
//     case folding) otherwise: Linux matches Joliet names so by default
//     (check=relaxed), and plain names are stored in uppercase but shown
//     in lowercase, so either case finds them.
//   - Not listed, as by Linux: "." and "..", associated files, and Rock
//     Ridge RE entries (the relocated directory is shown where its CL
//     entry stands, with the attributes of its own "." record); nor names
//     a hostile volume makes unusable (empty, "/" or NUL inside).
//
// # What is shown
//
//   - With Rock Ridge: PX's mode, link count, owner and group; PN device
//     numbers (a zero high word means the low one is a whole Linux dev_t,
//     as xorriso writes it, which agrees with the kernel's reading for the
//     classic 16-bit numbers; otherwise high and low are the major and the
//     minor); SL symlink targets with their component flags (".", "..",
//     "/", continued components); TF times in the short and the long
//     form: modification is Mtime, access Atime, creation Btime, and
//     attribute change Ctime (where TF has none, the creation time, as
//     Linux shows it, else the recording date).
//   - Without Rock Ridge there are no owners or modes: uid 0 and gid 0,
//     mode 0555 for files and directories alike, link count 1 (for
//     directories too), as Linux shows them by default (its mode= and
//     dmode= unset: "r-x for all", since a disc may hold executables of
//     any system). Mtime, Atime and Ctime are the recording date, with its
//     offset from GMT applied; Btime is unknown (zero).
//   - Inode numbers: where the root's PX entry carries a serial number
//     (RRIP 1.12, xorriso's -compliance new_rr), the serial numbers: hard
//     links share them; a record without one then gets its byte offset
//     with bit 62 set. Otherwise the byte offset of the file's directory
//     record, as Linux numbers isofs inodes (for a relocated directory,
//     the offset of its "." record; the root's is that of its "." record
//     too). Both are stable across mounts. Serial numbers are mapped to
//     their records as directories are read (at most 2^18 remembered; a
//     forgotten one is found again by walking the tree).
//   - Hidden records (the existence flag) have FlagHidden. The size of a
//     multi-extent file (4 GiB and more: several records of one name,
//     all but the last flagged) is the sum of its extents, read in order;
//     Blocks is the extents rounded up to logical blocks.
//   - Info: Type "iso9660"; Label as blkid gives it (the Joliet volume
//     identifier when it differs from the primary's first 16 characters,
//     else the primary's); UUID the volume modification date, else the
//     creation date, as blkid prints it: "YYYY-MM-DD-HH-MM-SS-CC".
//
// # What it refuses
//
// Interleaved files (file unit size or interleave gap set), Rock Ridge
// sparse files (SF) and zisofs-compressed files (ZF) open with
// ErrUnsupported; their metadata stays readable. Rock Ridge's extended
// attributes and ACLs (AA, AL) are not read, nor extended attribute
// records (their blocks are skipped).
//
// # Hostile volumes
//
// A directory record that runs past its 2048-byte sector, or is too short
// for its fields or name, is corrupt; continuation areas are followed at
// most 32 times per record and must lie inside one block (as Linux
// requires); a symlink target is at most 4095 bytes and a name 255; a
// multi-extent file has at most 65536 extents, and reading an extent past
// the volume fails with ErrCorrupt. A directory whose extent is an
// ancestor's lists that ancestor's records under the same inode numbers,
// so a walker sees a directory reached twice. Parsed directories and files
// are cached in LRUs of a few MiB; a directory too large for them is
// streamed.
package iso9660
