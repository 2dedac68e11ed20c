// Package fs serves an indexed OVF package as a read-only FUSE file system
// with go-fuse.
//
// It only maps: every member of the package becomes a node at its archive
// path, and extra virtual files (decoded disk views) are placed where the
// caller says. Format knowledge stays in packages ova and vdisk; this
// package never parses anything.
//
// # Read-only
//
// No mutating operation is implemented, so the kernel gets EROFS for every
// write, create, rename or unlink, and the mount carries the "ro" option.
//
// # Kernel caching
//
// Nothing under the mount ever changes, so file contents are opened with
// FOPEN_KEEP_CACHE and entries and attributes carry long timeouts: after
// the first read, the page cache answers repeated reads without a request.
// With [Options.DirectIO] files are opened with FOPEN_DIRECT_IO instead:
// the page cache is bypassed, which makes large sequential reads faster
// and small or repeated ones slower.
//
// # Reads
//
// A read of 64 KiB or more from a file whose bytes lie contiguously in a
// host file (a stored tar member, or a file of an unpacked package) is
// answered with a splice from that file's descriptor, clamped to the
// member: no byte is copied through user space. Smaller reads are copied,
// which costs less than a splice's fixed overhead. A verified file is
// answered from the buffers its chunks were checked in. Everything else is
// read into the request buffer. Errors are mapped to an errno in one place
// (see [Errno]), and logged there once.
//
// # Inode numbers
//
// Inode numbers are derived from each node's path, so they are the same on
// every mount of the same archive.
package fs
