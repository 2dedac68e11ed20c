// Package lvm reads LVM2 physical volumes and assembles their volume
// groups from the on-disk metadata alone, never through device-mapper, so
// that the logical volumes inside a guest disk can be read as files.
//
// What it reads: the label (LABELONE in one of the first four sectors,
// with its CRC), the PV header (UUID, device size, data and metadata
// areas), each metadata area's header (magic, version, CRC) and the
// committed metadata text it points to, following a text that wraps
// around the end of the circular area, checked against its CRC. The text
// is parsed by a small parser of LVM's configuration syntax (sections,
// assignments, strings with escapes, numbers, arrays), bounded in nesting
// depth (32) and size (64 MiB, and never more than the area holds).
//
// Assemble groups PVs by VG UUID, takes the metadata with the highest
// seqno, and matches the PVs the metadata lists by UUID. Every logical
// volume is listed, hidden internal ones (a thin pool's _tdata, RAID
// images, snapshotN, ...) with Visible false. Only linear and striped
// volumes whose PVs are all present and whose extents lie inside them are
// Supported, and only those open: a striped segment is read in
// stripe-size chunks taken from its stripes in turn, as device-mapper's
// striped target maps it. Thin pools and thin volumes, snapshots (a
// snapshot shows as its copy-on-write volume, as lvs lists it), RAID,
// mirror, cache, VDO and integrity volumes are listed with Type and a
// Reason, and Open returns ErrUnsupported for them.
//
// What it refuses: LVM1 and pool formats (no LVM2 label: ErrNoLabel),
// labels or metadata that fail their checks (ErrCorrupt, or a warning
// when another metadata copy is good), and metadata that names extents
// outside a PV (the LV is unsupported, with the reason).
package lvm
