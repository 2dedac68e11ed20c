// Package ova indexes the files of an OVF package so that every one can be
// read in place, at random offsets, without extracting anything: the
// members of an OVA tar archive ([Open]) or of a zip of the package's
// folder ([OpenZip]), or the files an unpacked package's model takes one
// by one from its folder ([OpenFolder]), and nothing else there.
//
// It knows archives, not packages: which file is the descriptor, which
// manifest is the package's own, and what the files mean is decided by
// package appliance; checks against the manifest are package integrity's.
//
// # What it promises
//
// [Open] scans the tar headers once and seeks over member data, so the cost
// of indexing depends on the number of members, not on their size: a 100 GB
// appliance indexes in milliseconds. Each [Member] records where its bytes
// are in the archive, and [Member.ReadAt] reads them directly from the
// archive's io.ReaderAt, never outside the member's stored range.
//
// The reader is lenient, like tar -x, and reports what it tolerated as
// [Warning]s rather than failing: duplicate names (the last one wins),
// trailing garbage, a truncated last member (mounted, with reads past the
// truncation failing with [ErrTruncated] instead of returning zeros),
// special files (skipped), and unsafe names.
//
// # Names
//
// Names are checked here, whatever GODEBUG's tarinsecurepath says. A
// leading "/" is removed (as GNU tar does), and a name containing "..", an
// empty name, a NUL byte or a component longer than 255 bytes is dropped.
// Each such change is a Warning naming the original. Symlinks are recorded,
// never followed.
//
// # What it refuses
//
// Open fails with [ErrFormat] only when the input is not a tar archive at
// all. Everything after the first valid header is best effort.
//
// # Zip archives
//
// Some vendors ship a zip of the package's folder instead of an OVA.
// [IsZip] recognises one by its first bytes, never by its name. [OpenZip]
// takes the central directory as the index: it finds the end record in
// the last 64 KiB (and the zip64 end record through its locator), reads
// the directory through a small buffer, so that memory follows the
// records present, never the count the end record claims (a count that
// disagrees is a Warning), and reads each entry's local header to learn
// where its data starts, checking that it names the same file, method,
// CRC-32 and sizes as the directory (an entry whose headers disagree is
// left out, with a Warning). It reads no entry's data but a symlink's
// target, so indexing costs the number of entries, like Open.
//
// A stored entry is a range of the archive, exactly like a tar member:
// [Member.Contiguous] and host ranges work. A deflated entry is served
// through a gzindex index of its raw deflate data, built at the entry's
// first read (or by [Member.Prepare], or by [ZipOptions].Eager for a
// verify), once, whatever the number of concurrent readers; the build
// checks the CRC-32 and size the directory records, and when they do not
// match, every read of the entry fails with [ErrZipCorrupt]. Any other
// method, and encryption, leaves the entry listed, with a Warning, and
// its reads fail with [ErrZipUnsupported]. With [ZipOptions].CacheDir the
// deflate indexes are kept between runs, named after the archive's
// identity. The reader is written here,
// not borrowed from archive/zip, because it must be index-only and
// bounded: archive/zip allocates for the directory's claimed count, reads
// entries only as streams, and cannot give random access to deflated
// data or report a stored entry's place in the file.
//
// Entries become members as tar members do, through the same name checks
// and warnings, the same tree: the last of duplicate names wins, and
// missing parent directories are implied. Modes come from the external
// attributes when the creator was Unix; times from the extended timestamp
// or NTFS fields, else the MS-DOS time, taken as local time as unzip does.
// Names flagged UTF-8, or carrying an Info-ZIP Unicode Path field, are
// UTF-8; other names made on Unix are kept as bytes (the creator's
// locale, as unzip on Linux keeps them); names made on MS-DOS or Windows
// are decoded from code page 437 unless they are valid UTF-8, with a
// Warning, and their backslashes become slashes.
//
// Entries whose bytes (local header and data) overlap those of an entry
// earlier in the file, as an overlapping-entry zip bomb has, are left out
// with a Warning, as is any entry whose data runs into the central
// directory: the rest of the archive stays usable. A prefix before the
// archive (a self-extractor stub) is found from the end record and
// tolerated with a Warning. Multi-disk archives are refused.
package ova
