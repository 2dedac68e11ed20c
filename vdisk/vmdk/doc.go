// Package vmdk maps the VMware virtual disk formats an OVA can carry onto
// [blockmap.Mapper], so the shared read path in package vdisk can serve
// them byte for byte as qemu-img convert -O raw would.
//
// What it reads:
//
//   - Hosted sparse files (magic KDMV, versions 1 to 3): monolithicSparse
//     with uncompressed grains (Stored runs) and zeroed-grain entries (Zero
//     runs), and streamOptimized with zlib grains behind grain markers or,
//     in the legacy form, behind a bare size. The grain directory may sit
//     at the front of the file (qemu-img, open-vmdk, VMware Workstation) or
//     at the end (gdOffset = GD_AT_END), in which case the footer copy of the
//     header near the end of the file is authoritative, as ovftool, ESX and
//     VirtualBox write it.
//   - Text descriptor members (# Disk DescriptorFile) whose extents are
//     SPARSE, VMFSSPARSE (VMDK3/COWD, the extent of ESX vmfsSparse
//     snapshots), SESPARSE, FLAT, VMFS or ZERO. Extent files are found
//     only through [Options.Resolve], which the caller implements over the
//     sibling archive members; this package never touches host paths.
//   - seSparse extents (ESXi snapshots: from 6.5 for disks over 2 TB, the
//     default from 6.7), as strictly as qemu reads them,
//     the format having no published specification: version 2.1, 4 KiB
//     grains, tables of 4096 64-bit entries (unallocated grains are Holes,
//     zeroed and unmapped ones Zero runs, allocated ones Stored in the
//     grains area), no flags and no journal left to replay.
//   - Delta disks (snapshots and linked clones: a descriptor with a
//     parentFileNameHint, or a parentCID other than ffffffff), in any of
//     the forms above, when [Options.AllowParent] is set: [Image.Parent]
//     then gives the parent's name exactly as stored and a Check of a
//     candidate's [Image.CID] against the delta's parentCID, and Map
//     returns Hole exactly where the parent shows through (an unallocated
//     grain, or a grain table the directory leaves out) and Zero where the
//     delta says zeros (a zeroed-grain entry, an seSparse zeroed or
//     unmapped grain). A VMDK delta reads only through a VMDK parent:
//     qemu fails every read that reaches a parent of another format,
//     which has no CID to check, so Check refuses one. A disk without a
//     parent reads its unallocated grains as Holes too: there they are
//     zeros, as before.
//
// What it refuses, with an error wrapping [blockmap.ErrUnsupported]:
// delta disks unless [Options.AllowParent] is set (a parent CID or parent
// file name), raw device mappings, NOACCESS extents, seSparse extents of
// other versions, grain or table sizes, with flags or with a journal to
// replay, a bare sparse extent without an embedded descriptor (one piece
// of a split disk; qemu refuses it too), extent names that are absolute
// or climb with "..", and unknown compression algorithms.
//
// Every header, table and grain record is treated as hostile: table sizes
// are checked against the member before anything is allocated, every
// table entry is checked before it is followed, and a compressed grain
// must inflate to exactly one grain (the last grain of the disk may stop
// once it covers the disk's end, as qemu allows). Failures wrap
// [blockmap.ErrCorrupt] and name the disk, grain, LBA and member offset.
//
// An embedded descriptor is read only for its createType, CID and parent
// fields: OVA members get renamed, so its extent file name means nothing.
package vmdk
