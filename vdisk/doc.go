// Package vdisk decodes disk images (VMDK, VHD, VHDX, QCOW2, VDI and raw) into
// their virtual bytes, for the raw views of a mount.
//
// # What it promises
//
// [Open] recognises a format by its magic bytes, never by a file name or an
// OVF format URI (both are often wrong), and returns an [Image]: an
// io.ReaderAt over the virtual disk, its size, and its allocation map. The
// bytes are those `qemu-img convert -O raw` writes. A damaged or hostile
// image gives an error for the read that meets the damage, never garbage
// and never a panic; reads elsewhere keep working, except after a unit whose
// head was served is found corrupt (see below).
//
// # Chains
//
// A child image (a VMDK delta, a QCOW2 overlay, a VHD, VHDX or VDI
// differencing disk) is opened as one when [Options.Parents] is set: the caller lists
// the package's files that may be the parent it names, never a host path;
// the child checks the candidate (blockmap.Parent.Check), and the view
// reads a layer's holes from the next layer, and zeros past a parent's
// end, as qemu does. The chain is one more Mapper, so the read path below
// serves it unchanged; [Image.Layers] and [Image.Provenance] say which
// layer holds what. Loops, a child that is its own parent and chains
// deeper than [MaxChainDepth] fail with [ErrParent]. Without Parents, a
// child is refused with ErrUnsupported.
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
//     contiguous in the image are read with one ReadAt;
//   - a read that wants only the head of a unit not yet decoded inflates
//     only up to the end of what it wants, where that skips no check (see
//     blockmap.PrefixDecoder: a VMDK grain or a QCOW2 zlib cluster whose
//     source is proven by the package's checks); the unit is decoded
//     whole, checked and cached later, when reads pause or a read wants its
//     tail. If that finds it corrupt, the bytes already served may be wrong:
//     the image is damaged ([Image.Damaged]) and every later read fails.
//
// # Interrupted reads
//
// [Image.ReadAtContext] carries the reader's context down: a read stops
// waiting, with the context's error, when the context ends while it waits
// for a worker, for a unit another reader decodes, or for a source that is
// a [ContextReaderAt] (a member on a strict-verification mount waits until
// it is verified). A decode abandoned that way is not a failure of the
// unit: the next reader, or one already waiting for it, decodes it again.
package vdisk
