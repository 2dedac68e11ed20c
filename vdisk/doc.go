// Package vdisk decodes disk images (VMDK, VHD, VHDX, QCOW2 and raw) into
// their virtual bytes, for the raw views of a mount.
//
// # What it promises
//
// [Open] recognises a format by its magic bytes, never by a file name or an
// OVF format URI (both are often wrong), and returns an [Image]: an
// io.ReaderAt over the virtual disk, its size, and its allocation map. The
// bytes are those `qemu-img convert -O raw` writes. A damaged or hostile
// image gives an error for the read that meets the damage, never garbage
// and never a panic; reads elsewhere keep working.
//
// # The read path
//
// Formats (in the subpackages) only map a virtual offset to where its
// bytes are (see package blockmap). One read path serves them all:
//
//   - decoded units (VMDK grains, QCOW2 clusters) are kept in a [Cache]
//     with a byte budget, shared by every image of a mount, and concurrent
//     readers of one unit share one decode;
//   - the units one read needs are decoded in parallel, on at most
//     GOMAXPROCS workers;
//   - a reader walking the disk sequentially gets the next units decoded
//     ahead of it, on idle workers only, so one dd uses every core without
//     slowing other readers;
//   - holes and zero runs are served without I/O, and stored runs that are
//     contiguous in the image are read with one ReadAt.
package vdisk
