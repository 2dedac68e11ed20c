// Package ova indexes the files of an OVF package so that every one can be
// read in place, at random offsets, without extracting anything: the
// members of an OVA tar archive ([Open]), or the files an unpacked
// package's model takes one by one from its folder ([OpenFolder]), and
// nothing else there.
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
package ova
