// Package vhd maps the virtual bytes of a Microsoft VHD image (Virtual PC,
// Virtual Server, Hyper-V, XenServer, qemu "vpc") onto the image file, for
// the shared read path in package vdisk.
//
// It promises:
//   - fixed and dynamic disks with any power-of-two block size from 512
//     bytes, read as qemu-img reads them. A dynamic disk's sector bitmaps
//     are ignored, as qemu does: every sector of an allocated block is
//     data. The bitmap in front of each block is sized as the format
//     says (one bit per sector, in whole sectors); qemu 7.2 gets that wrong
//     for blocks under 4 KiB, which no known writer produces;
//   - the virtual size is the CHS geometry for images written by Virtual PC
//     ("vpc ") and by qemu's "qemu" creator, unless the geometry is the
//     maximal one, and current_size otherwise. qemu 7.2 also uses the
//     geometry for creators it does not know (Virtual Server, Azure); the
//     newer rule used here serves those disks whole. Both sizes are
//     reported in Warnings when they differ;
//   - damaged checksums are warnings, not failures. qemu refuses such
//     images, but a forensic examiner still needs their bytes, so reading
//     goes on wherever the structures are otherwise consistent, and a
//     damaged or missing footer at the end is replaced by the copy at
//     offset 0;
//   - hostile input cannot make it panic, loop, allocate more than the file
//     could describe, or read outside the image. A BAT entry whose block
//     would lie outside the image or on its metadata does not fail Open, so
//     that the other blocks of a truncated image stay readable (qemu
//     refuses the whole image); mapping that block fails with an error
//     naming it, and Open records a warning.
//
// It refuses:
//   - differencing disks (type 4), whose unallocated sectors live in a
//     parent image: the error names the parent from the header and the
//     paths its locators hold, and no parent is ever looked up on the host;
//   - disk types other than fixed, dynamic and differencing, virtual sizes
//     over the format's 2040 GiB limit, and footer copies that disagree on
//     the layout while neither is the only one with a good checksum,
//     because there is no way to tell which one is right.
package vhd
