// Package vdi maps the virtual bytes of a VirtualBox VDI image onto the
// image file, for the shared read path in package vdisk.
//
// It promises:
//   - dynamic ("normal", type 1), fixed (type 2) and, when opened with
//     Options.AllowParent, differencing (type 4) images, with header
//     version 1.x (1.1 and 1.1+, which VirtualBox and qemu write) or the
//     old 0.2, any power-of-two block size from 512 bytes, and block extra
//     data (placed before each block's data, as VirtualBox reads it). qemu
//     reads only 1.1 with 1 MiB blocks and no parent, and ignores block
//     extra data (no known writer makes any), reading such blocks from the
//     wrong place; elsewhere, the bytes are those qemu-img convert writes;
//   - a block map entry 0xFFFFFFFF (free) is a Hole: zeros in a base
//     image, the parent's bytes in a differencing image, as VirtualBox
//     reads it (qemu has no differencing VDI). 0xFFFFFFFE is a Zero run,
//     zeros whatever the parent holds;
//   - a differencing image's Parent has no Names, because a VDI names its
//     parent only by the parent's creation UUID (uuidLinkage). A resolver
//     matches it by UUID among the package's VDI files: ParentUUID against
//     CreateUUID. Check accepts exactly the VDI image whose creation UUID
//     is the child's uuidLinkage, which is all VirtualBox checks: Main's
//     Medium::i_queryInfo compares the linkage with the parent's UUID in
//     the media registry, and VD's VDOpen checks nothing ("optionally
//     check UUIDs" is a todo there). The child's uuidParentModify is not
//     compared with the parent's uuidModify, because VirtualBox never
//     compares them and gives an image a new uuidModify whenever it writes
//     to it (vdResetModifiedFlag), so a chain VirtualBox runs may well
//     disagree there. ParentModifyUUID and ModifyUUID expose both.
//     Check refuses a parent of another format (ErrWrongParent), although
//     VirtualBox writes VDI children over bases of formats it cannot write
//     children for, such as VHDX or raw (Medium::i_getPreferredDiffFormat):
//     their UUID is one VirtualBox keeps in its registry or reads through
//     its own backend, which this package cannot confirm;
//   - an odd disk size is rounded up to a whole sector, as qemu does
//     (VirtualBox rounds down), with a warning;
//   - hostile input cannot make it panic, loop, allocate more than the file
//     could describe, or read outside the image. Only the block map
//     entries of blocks the disk covers are read, and they must lie in the
//     file. A block whose data would lie past the end of the file does not
//     fail Open, so that the other blocks of a truncated image stay
//     readable; mapping it fails with an error naming it, as VirtualBox's
//     read does (VERR_VD_READ_OUT_OF_RANGE). qemu reads such a block's
//     missing bytes as zeros, which would serve a truncated image's lost
//     data as zeros without a word. Blocks that share a stored block, or
//     lie past the header's count of allocated blocks, are read as both
//     VirtualBox and qemu read them, with a warning.
//
// It refuses:
//   - differencing images without AllowParent (ErrUnsupported, naming the
//     parent's UUIDs), and differencing images with a null parent UUID,
//     which no image can match (ErrCorrupt);
//   - undo images (type 3, VirtualBox 1.x), which VirtualBox's current
//     code does not handle (it asserts on the type), and unknown types;
//   - versions other than 1.x and 0.2, which VirtualBox does not read
//     either;
//   - headers whose fields cannot describe a readable image: a header size
//     under the 1.1 header's, a block map overlapping the header or the
//     data, a block size that is not a power of two of at least 512 bytes,
//     block extra data that is neither 0 nor a power of two, a disk larger
//     than its blocks cover, a block map running past the end of the file.
//     Fields that do not change how blocks are read (image flags, geometry
//     sector sizes, null UUIDs, the allocated-block count) only warn, even
//     where VirtualBox or qemu refuses.
package vdi
