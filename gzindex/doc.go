// Package gzindex gives random access to the decompressed bytes of a gzip
// stream, such as a disk stored with ovf:compression="gzip" in an OVA, so
// that the disk can be decoded and read at any offset without
// decompressing it to a file first.
//
// # What it promises
//
// [Build] reads the stream once, verifying every member's CRC-32 and ISIZE,
// and records checkpoints (zlib's zran technique): a compressed bit
// offset, a decompressed offset and the 32 KiB of output before it. A
// [Reader] then serves any offset by decoding from the nearest checkpoint,
// so a read decodes at most [Index.Span] bytes before its data, and keeps a
// few decoders positioned where reads left them, so sequential readers
// decode the stream once.
//
// Checkpoints may fall anywhere between two deflate symbols, not only at
// block boundaries: the package has its own deflate decoder that can stop
// and resume mid-block (it re-reads the block's header to rebuild its
// Huffman tables). That keeps the spacing even when a stream holds huge
// blocks, as a hostile or unusual encoder may write, and the decoder is
// also faster than compress/flate and klauspost/compress/flate on real
// data.
//
// With [Options.Raw], the stream is instead one raw deflate stream (RFC
// 1951), as a zip archive stores a member: there is no gzip framing, so
// Build checks the output against the CRC-32 and size the container
// recorded, given in [RawCheck], and requires the deflate data to end
// exactly at the end of the stream. The Reader serves both kinds alike.
//
// Concatenated members (cat a.gz b.gz, bgzip, and tools that compress in
// independent chunks) decode as one stream. Memory is bounded whatever the
// stream: checkpoints are capped (see [Options]) by thinning them and
// doubling the span, their windows are kept deflate-compressed, and a
// Reader keeps at most 8 decoders of about 600 KiB each. An index persists
// with [Index.MarshalBinary] and [Unmarshal], with a digest and the
// identity of its stream, which [Index.Matches] checks cheaply; or, for
// large streams, with [Index.MarshalSplit] and [Load], which reads back
// the index without its windows (a 32 KiB window per checkpoint, 19 MB
// for a 1.2 GB stream) and reads each window, checked by its CRC-32C,
// when a read first needs it. A window that fails its check is passed
// over for the checkpoint before it, at the cost of a span's decoding.
//
// # What it refuses
//
// Build fails where gzip -t fails: on a stream that is not gzip
// ([ErrNotGzip]), a malformed member header ([ErrHeader]), corrupt deflate
// data ([ErrCorrupt]), a CRC-32 or ISIZE mismatch ([ErrChecksum]), or a
// truncated stream ([ErrTruncated]). It also fails on bytes after the last
// member other than zero padding ([ErrTrailingData]), which gzip only warns
// about: an index must not silently leave data out. Zero padding, which
// tape and block devices add, is tolerated with a warning. A decompression
// bomb is not refused: it is a large stream, served like any other, and
// Build reports progress and honours cancellation while reading it.
//
// Reader trusts its index and does not re-verify CRC-32s. Data that no
// longer decodes is an error, but a stream changed in place may also yield
// wrong bytes: [Index.Matches] is the cheap guard against using an index
// with the wrong stream. Reader never reads the stream past the size it
// was given, and the package never opens files or the network.
package gzindex
