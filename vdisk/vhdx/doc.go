// Package vhdx maps the virtual bytes of a Hyper-V VHDX image ([MS-VHDX])
// onto the image file, for the shared read path in package vdisk.
//
// It promises:
//
//   - Dynamic and fixed VHDX files with 512- or 4096-byte logical sectors
//     and any block size the specification allows (1 MiB to 256 MiB) read
//     byte for byte as qemu-img convert -O raw reads them (qemu 7.2 itself
//     refuses 4096-byte sectors; the data layout does not change with them).
//   - The active header is the valid one with the higher sequence number;
//     a damaged region table gives way to its copy. Both fallbacks are
//     reported by Warnings.
//   - A dirty metadata log is replayed in memory, as the specification
//     requires of every reader, and never written back: the replayed
//     sectors overlay the region tables, the metadata, the BAT and the
//     payload, so that a Stored run never covers a sector the log
//     replaced. The entries replayed are those from the newest complete
//     sequence's tail to its head, which for logs written by Hyper-V or
//     qemu is what qemu replays. A log that cannot be replayed exactly is
//     refused rather than read stale.
//   - Every structure is validated before use (BAT entries against the
//     file's end and against every other structure, as qemu does) and
//     every allocation is bounded by the image file, so hostile input
//     yields an error wrapping blockmap.ErrCorrupt or
//     blockmap.ErrUnsupported, never a panic, a hang, a read outside the
//     member or an allocation out of proportion to the file.
//
// It refuses:
//
//   - differencing disks (HasParent): their parent lives outside the
//     archive member, so the error names the parent from the locator;
//   - PARTIALLY_PRESENT payload blocks, which only differencing disks use
//     (reading such a block fails; the rest of the disk reads);
//   - unknown region table entries or metadata items marked required;
//   - dirty logs larger than maxReplayLog (32 MiB), which would have to be
//     held in memory; Hyper-V and qemu write 1 MiB logs.
package vhdx
