// Package vhd maps the virtual bytes of a Microsoft VHD image (Virtual PC,
// Virtual Server, Hyper-V, XenServer, qemu "vpc") onto the image file, for
// the shared read path in package vdisk.
//
// It promises:
//
//   - fixed and dynamic disks with any power-of-two block size from 512
//     bytes, read as qemu-img reads them. A dynamic disk's sector bitmaps
//     are ignored, as qemu does: every sector of an allocated block is
//     data. The bitmap in front of each block is sized as the format
//     says (one bit per sector, in whole sectors); qemu 7.2 gets that wrong
//     for blocks under 4 KiB, which no known writer produces;
//
//   - the virtual size is the CHS geometry for images written by Virtual PC
//     ("vpc ") and by qemu's "qemu" creator, unless the geometry is the
//     maximal one, and current_size otherwise. qemu 7.2 also uses the
//     geometry for creators it does not know (Virtual Server, Azure); the
//     newer rule used here serves those disks whole. Both sizes are
//     reported in Warnings when they differ;
//
//   - damaged checksums are warnings, not failures. qemu refuses such
//     images, but a forensic examiner still needs their bytes, so reading
//     goes on wherever the structures are otherwise consistent, and a
//     damaged or missing footer at the end is replaced by the copy at
//     offset 0;
//
//   - hostile input cannot make it panic, loop, allocate more than the file
//     could describe, or read outside the image. A BAT entry whose block
//     would lie outside the image or on its metadata does not fail Open, so
//     that the other blocks of a truncated image stay readable (qemu
//     refuses the whole image); mapping that block fails with an error
//     naming it, and Open records a warning.
//
//   - differencing disks (type 4), with Options.AllowParent, as the child
//     layer of a chain (package vdisk finds the parent among the package's
//     files and reads through it, never on the host). There the sector
//     bitmaps count: an unallocated block is a Hole, where the parent shows
//     through, and inside an allocated block a sector whose bit is set
//     (bits numbered from the most significant bit of byte 0) is Stored in
//     the child, one whose bit is clear a Hole. Map returns the longest run
//     of alike sectors in the block, found a 64-bit word at a time, and the
//     bitmaps are kept in a small LRU (64 of them, 1 MiB at most): vdisk
//     maps once per run, and a sequential read of a child whose bitmaps
//     alternate every 8 sectors ran at 780 MB/s reading the bitmap on each
//     call, 3.2 GB/s with the cache (BenchmarkChildSequential). Parent
//     names the parent by its locators (W2ru, W2ku, the deprecated Wi2r
//     and Wi2k, MacX; "Mac " holds a binary alias and is skipped), then by
//     the header's Unicode parent name, each as stored; Parent.Check wants
//     a VHD whose footer Unique Id ([Image.UniqueID]) is the child's Parent
//     Unique ID. The Parent Time Stamp is the parent file's modification
//     time when the child was made (the specification's "modification time
//     stamp of the parent hard disk"; VirtualBox writes the parent file's
//     mtime there and qemu 7.2 reads no parents at all): an archive does
//     not keep that, so it is reported in Warnings, not compared. qemu-img
//     7.2 opens a differencing disk as if it were dynamic, ignoring bitmaps
//     and parent, so it agrees with the Stored runs only;
//
// It refuses:
//   - differencing disks without Options.AllowParent, as before: the error
//     names the parent from the header and the paths its locators hold;
//   - disk types other than fixed, dynamic and differencing, virtual sizes
//     over the format's 2040 GiB limit, and footer copies that disagree on
//     the layout while neither is the only one with a good checksum,
//     because there is no way to tell which one is right.
package vhd
