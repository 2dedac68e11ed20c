// Package xzindex gives random access to the decompressed bytes of an xz
// file, such as an OVA shipped as .ova.xz, so that it can be mounted and
// read at any offset without decompressing it to a file first.
//
// # What it promises
//
// [Open] reads only the file's structure: from the end, the stream
// padding, stream footer, index and stream header of each concatenated
// stream, and then each block's header. It reads none of the compressed
// data, so it costs a few small reads per block whatever the file's size.
// Every structure is checked against the others and the file size, and
// its CRC32 verified; allocations are bounded by what the input holds and
// by [Options.MaxUnits], so a hostile index claiming 2^60 blocks is an
// error, not an allocation.
//
// A [Reader] serves any offset by decoding the block that covers it, from
// the block's start, with liblzma's LZMA2 decoder where the build has it
// (-tags=liblzma, with cgo), else that of github.com/ulikunitz/xz. It
// keeps a few decoders (Options.Decoders, default 4) positioned where
// reads left them, each with the last 512 KiB of its output, so that a
// sequential reader, or a few interleaved ones, decode each block once,
// and reads arriving slightly out of order cost no decoding. A bounded
// LRU of decoded 256 KiB pieces ([Options.CacheBytes], 32 MiB by default)
// serves re-reads that no decoder holds any more, such as a filesystem's
// metadata read again, without decoding the block from its start. It is safe
// for concurrent use. A block's integrity check (CRC32, CRC64 or SHA-256)
// is verified whenever a read decodes the block to its end, with its
// LZMA2 end marker, compressed size and padding; a mismatch is
// [ErrChecksum]. A read that stops inside a block returns bytes whose
// check has not been verified yet.
//
// Memory is bounded: each decoder holds an LZMA2 dictionary of the
// block's dictionary size or decompressed size, whichever is smaller (at
// most [Options.MaxDict], 64 MiB), and a 512 KiB buffer; the piece cache
// holds at most CacheBytes; the block table takes about 100 bytes a
// block. A Reader thus uses at most Decoders × (MaxDict + 512 KiB) +
// CacheBytes plus its table: 66 MiB with xz -6 output (8 MiB
// dictionaries) and the defaults, 290 MiB at worst.
//
// # Big blocks: random access is by block
//
// A block is the unit of random access. A checkpoint inside an LZMA2
// block would need the whole dictionary (up to 64 MiB) and the range
// coder and probability state, which neither decoder exposes; so a
// cold read decodes its block from the start, and costs up to the block's
// decompressed size. Blocks larger than [Options.MaxUnit] are refused by
// Open with [ErrUnitTooLarge], whose message says how to recompress:
// "xz -T0", which writes independent blocks of three times the
// dictionary (24 MiB at the default -6), or "xz --block-size=16MiB". The
// default MaxUnit, 256 MiB, admits every block xz -T0 writes at any
// preset (192 MiB at -9), and bounds a cold read to decoding 256 MiB
// (about nine seconds at the 29 MB/s liblzma reaches on the bench's
// already compressed data); smaller
// blocks make random reads cheaper. A file compressed single-threaded (xz
// without -T or --block-size, with xz 5.4 and older) is one block: it
// opens when it decompresses to at most MaxUnit, and every cold read then
// decodes from the file's start.
//
// # What it refuses
//
// Open fails on input that is not xz ([ErrNotXZ]), malformed or
// inconsistent structures or bytes other than stream padding between or
// after streams ([ErrFormat]), CRC32 mismatches ([ErrChecksum]), filter
// chains other than LZMA2 alone (BCJ, delta; [ErrUnsupported], naming the
// filter), check types xz does not define ([ErrUnsupported]), and the
// limits above ([ErrUnitTooLarge], [ErrDictTooLarge], [ErrTooManyUnits]).
// ReadAt fails with [ErrCorrupt] on LZMA2 data that does not decode or
// decodes to other sizes than the index says. Errors wrap these sentinels
// with the block and offset concerned.
//
// The package never reads outside [0, size) of the ReaderAt it is given,
// never opens files or the network, and never panics on hostile input.
package xzindex
