// Package vhdx maps the virtual bytes of a Hyper-V VHDX image ([MS-VHDX])
// onto the image file, for the shared read path in package vdisk.
//
// It promises:
//
//   - Dynamic and fixed VHDX files with 512- or 4096-byte logical sectors
//     and any block size the specification allows (1 MiB to 256 MiB) read
//     byte for byte as qemu-img convert -O raw reads them (qemu 7.2 itself
//     refuses 4096-byte sectors; the data layout does not change with them).
//
//   - The active header is the valid one with the higher sequence number;
//     a damaged region table gives way to its copy. Both fallbacks are
//     reported by Warnings.
//
//   - A dirty metadata log is replayed in memory, as the specification
//     requires of every reader, and never written back: the replayed
//     sectors overlay the region tables, the metadata, the BAT and the
//     payload, so that a Stored run never covers a sector the log
//     replaced. The entries replayed are those from the newest complete
//     sequence's tail to its head, which for logs written by Hyper-V or
//     qemu is what qemu replays. A log that cannot be replayed exactly is
//     refused rather than read stale.
//
//   - Every structure is validated before use (BAT entries against the
//     file's end and against every other structure, as qemu does) and
//     every allocation is bounded by the image file, so hostile input
//     yields an error wrapping blockmap.ErrCorrupt or
//     blockmap.ErrUnsupported, never a panic, a hang, a read outside the
//     member or an allocation out of proportion to the file.
//
//   - Differencing disks (HasParent), with Options.AllowParent, as the
//     child layer of a chain: package vdisk finds the parent among the
//     package's files and reads through it, never on the host. A
//     NOT_PRESENT block is a Hole (the parent shows through); ZERO is Zero;
//     UNDEFINED and UNMAPPED are Zero too, because [MS-VHDX] 2.5.1.1 lets a
//     reader return zeros or stale data for them but never makes them the
//     parent's; FULLY_PRESENT is Stored; in a PARTIALLY_PRESENT block the
//     chunk's sector bitmap block (bit k is bit k%8 of byte k/8) decides
//     each sector, Stored where set and Hole where clear, and Map returns
//     the longest run of alike sectors in the block. The block's slice of
//     the bitmap is read once and kept in a small LRU (64 slices, 1 MiB at
//     most), since vdisk maps once per run. A present sector bitmap entry
//     is placed under the rules of a payload block; a PARTIALLY_PRESENT
//     block whose chunk has none fails its reads. The BAT holds the last
//     chunk's sector bitmap entry too, where the interleaving puts it, as
//     qemu counts it. Parent names the parent by the locator's
//     relative_path, volume_path and absolute_win32_path, those present,
//     in the order the specification evaluates them, as stored;
//     Parent.Check wants a VHDX whose header DataWriteGuid
//     ([Image.DataWriteGUID]) is parent_linkage or parent_linkage2. A
//     locator without parent_linkage or any path, of another locator
//     type, with a key twice, or with entries outside itself is refused.
//     qemu-img 7.2 refuses differencing VHDX, so the tests build them from
//     the specification.
//
// It refuses:
//
//   - differencing disks without Options.AllowParent, as before: the error
//     names the parent from the locator;
//   - PARTIALLY_PRESENT payload blocks of a disk that is not a
//     differencing one (reading such a block fails; the rest reads);
//   - unknown region table entries or metadata items marked required;
//   - dirty logs larger than maxReplayLog (32 MiB), which would have to be
//     held in memory; Hyper-V and qemu write 1 MiB logs.
package vhdx
