// Package qcow2 maps the virtual bytes of a QCOW2 image (versions 2 and 3)
// onto the image file, for the shared read path in package vdisk.
//
// The package promises what qemu-img convert -O raw promises: every virtual
// byte it serves is the byte qemu would serve, including zlib (raw deflate)
// and zstd compressed clusters, explicit zero clusters, extended L2 entries
// with subclusters, and images whose last cluster is cut short. It never
// decodes data for a reader itself: Map answers where a virtual offset
// lives, and the Decoder it hands out turns one compressed cluster into
// bytes.
//
// It refuses, with an error wrapping blockmap.ErrUnsupported, what cannot be
// served read-only from inside one archive member: backing files (never
// opened, so a hostile image cannot reach the host filesystem), external
// data files, encryption, incompatible features it does not know and the
// limits of qemu's own implementation (clusters over 2 MiB). Structures
// qemu rejects fail with an error wrapping blockmap.ErrCorrupt that names
// the table, the entry and the offset, and so do a few that qemu would
// read but no writer produces: a table, data cluster or compressed record
// that starts past the end of the member, or one laid over the header, the
// L1 table, the refcount table or its own L2 table. As in qemu, bytes past
// the end of the member read as zeros when a cluster, a compressed record
// or an L2 table merely ends there. Internal snapshots are ignored: only
// the active L1 table is read.
//
// Every size read from the file is checked against the member's length
// before anything is allocated, so a hostile header cannot make Open
// allocate more than the file could hold, and no table walk is driven by an
// unchecked count.
package qcow2
