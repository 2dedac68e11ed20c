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
//     SPARSE, VMFSSPARSE, FLAT, VMFS or ZERO. Extent files are found only
//     through [Options.Resolve], which the caller implements over the
//     sibling archive members; this package never touches host paths.
//
// What it refuses, with an error wrapping [blockmap.ErrUnsupported]:
// delta disks (a parent CID or parent file name), raw device mappings,
// seSparse and NOACCESS extents, a bare sparse extent without an embedded
// descriptor (one piece of a split disk; qemu refuses it too), extent
// names that are absolute or climb with "..", and unknown compression
// algorithms.
//
// Every header, table and grain record is treated as hostile: table sizes
// are checked against the member before anything is allocated, every
// table entry is checked before it is followed, and a compressed grain
// must inflate to exactly one grain (the last grain of the disk may stop
// once it covers the disk's end, as qemu allows). Failures wrap
// [blockmap.ErrCorrupt] and name the disk, grain, LBA and member offset.
//
// An embedded descriptor is read only for its createType and parent
// fields: OVA members get renamed, so its extent file name means nothing.
package vmdk
