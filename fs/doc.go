// Package fs serves a package's plan (see package appliance) as a
// read-only FUSE file system with go-fuse.
//
// It holds no policy: every entry of the plan becomes a node at its path,
// and every read of a file asks the entry's content, once, how it is
// served (see package route): host ranges, spliced; held buffers, written
// as they are; or bytes. What a package holds, how its files are checked
// and how its disks are decoded are decided in packages appliance, ova and
// vdisk; this package never parses anything.
//
// # Read-only
//
// No mutating operation is implemented, so the kernel gets EROFS for every
// write, create, rename or unlink, and the mount carries the "ro" option.
//
// # Kernel caching
//
// Nothing under the mount ever changes, so the kernel keeps file contents
// across opens and entries and attributes carry long timeouts: after the
// first read, the page cache answers repeated reads without a request.
// Files need no open: the first OPEN and FLUSH are answered ENOSYS, after
// which the kernel sends neither (nor RELEASE) on the mount, and each node
// serves its reads without a handle, so reading a small file costs one
// round trip instead of three. With [Options.DirectIO] every open is
// answered with FOPEN_DIRECT_IO instead: the page cache is bypassed, which
// makes large sequential reads faster and small or repeated ones slower.
//
// A reader that reads a guest folder's small files in turn (tar, cp -r,
// grep -r) finds the next ones already in the page cache: after each small
// file read whole, the folder's next small files are read through the
// same checked route and stored there with FUSE_NOTIFY_STORE, in a window
// that grows while the reader keeps to the folder's order (fileahead.go).
// A file whose read fails is never stored; its reader gets the error.
//
// With an [Observer] (a read audit log) every OPEN is answered instead,
// without FOPEN_KEEP_CACHE, so that each open and release is seen with its
// caller and each open's reads reach the daemon; nothing is stored ahead.
//
// # Reads
//
// A read of 64 KiB or more whose content answers with host file ranges (a
// stored tar member, a file of an unpacked package, the stored blocks and
// holes of an uncompressed disk view) is spliced from those files, clamped
// to the ranges: no byte is copied through user space. Smaller reads are
// asked for bytes, which costs less than a splice's fixed overhead. Ranges
// that would not fit the reply pipe are asked for again as bytes. Errors
// are mapped to an errno in one place (see [Errno]), and logged there once.
// An Observer is told of every read before its bytes are given out, and a
// read it refuses fails with EIO.
//
// # Inode numbers
//
// Inode numbers are derived from each node's path, so they are the same on
// every mount of the same archive.
package fs
