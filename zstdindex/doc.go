// Package zstdindex gives random access to the decompressed bytes of a
// zstd file, such as an OVA shipped as .ova.zst, so that it can be
// mounted and read at any offset without decompressing it to a file
// first.
//
// # What it promises
//
// [Open] finds the file's frames without decoding them where it can. A
// file in the zstd seekable format (ending with a skippable frame of
// magic 0x184D2A5E holding a seek table, footer magic 0x8F92EAB1) gives
// them directly: Open reads only the table, checks that its frames tile
// the bytes before it, and checks each frame's header against the table
// when the frame is first decoded. Otherwise Open walks the file: frame
// headers, then the three-byte block headers, whose type and size let it
// skip each block unread, and skippable frames (pzstd writes one before
// each frame). A frame header that states Frame_Content_Size gives the
// frame's decompressed size. A frame that does not is decoded once by
// Open to learn its size, at most [Options.MaxUnit] bytes of it,
// reporting progress to [Options.Progress]: zstd writing from a pipe
// writes such a frame, and pzstd writes only such frames, so Open decodes
// pzstd output whole once (measured: 0.1 s for 200 MiB). A seek table
// avoids that.
//
// A [Reader] serves any offset by decoding the frame that covers it, from
// the frame's start, with github.com/klauspost/compress/zstd. It keeps a
// few decoders (Options.Decoders, default 4) positioned where reads left
// them, each with the last 512 KiB of its output, so that a sequential
// reader, or a few interleaved ones, decode each frame once. It is safe
// for concurrent use. A frame's XXH64 content checksum, when present, is
// verified whenever a read decodes the frame to its end ([ErrChecksum]);
// a read that stops inside a frame returns bytes not verified yet. The
// seek table's optional per-frame checksums are not used: the frames'
// own are.
//
// An optional LRU of decoded 256 KiB pieces ([Options.CacheBytes], off
// by default, since decoding costs little more than the copy) serves
// re-reads that no decoder holds any more.
//
// Memory is bounded: each decoder holds up to the frame's window (at most
// [Options.MaxWindow], 128 MiB) plus about 256 KiB, and a 512 KiB
// buffer; the piece cache at most CacheBytes; the frame table about 60
// bytes a frame, at most [Options.MaxUnits] frames.
//
// # Big frames: random access is by frame
//
// A frame is the unit of random access. A checkpoint inside a frame would
// need the whole window (up to 128 MiB) plus the entropy tables and
// repeat offsets, which the Go decoder does not expose; so a cold read
// decodes its frame from the start, and costs up to the frame's
// decompressed size. Frames larger than [Options.MaxUnit] (default 256
// MiB) are refused with [ErrUnitTooLarge]. The zstd CLI always writes one
// frame per file: -T and -B split the work into jobs inside that frame,
// and --long only makes the window larger, so none of its options helps.
// The error says to recompress with pzstd, which writes independent
// frames (2 MiB at -1 and 8 MiB at -3, four times the level's window), or
// to compress fixed-size pieces separately (split -b 16M, zstd each, cat
// them: concatenated frames are a valid zstd file). A file of one frame
// opens when it decompresses to at most MaxUnit, and every cold read then
// decodes from the file's start.
//
// # What it refuses
//
// Open fails on input that does not start with a zstd or skippable frame
// ([ErrNotZstd]), malformed headers, seek tables, or bytes after the last
// frame that are no frame ([ErrFormat]), a file ending inside a frame
// ([ErrTruncated]), frames that need a dictionary ([ErrUnsupported]),
// windows over MaxWindow ([ErrWindowTooLarge], e.g. zstd --long=28 and
// up), and the limits above ([ErrUnitTooLarge], [ErrTooManyUnits]).
// ReadAt fails with [ErrCorrupt] on frame data that does not decode or
// decodes to another size than the header or seek table says. Errors wrap
// these sentinels with the offset concerned.
//
// The package never reads outside [0, size) of the ReaderAt it is given,
// never opens files or the network, and never panics on hostile input.
package zstdindex
