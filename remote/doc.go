// Package remote reads a file on an HTTP(S) server as an io.ReaderAt, with
// range requests, so that ovfmount can mount an OVA from a URL without
// downloading it.
//
// # What it promises
//
// Every byte a read returns is a byte of the file as it was when [Open]
// saw it. Open pins the server's validator (ETag, else Last-Modified) and
// size; every later request carries If-Range (and If-Match for a strong
// ETag) and every answer is checked against them. A file that changed
// fails the read with [ErrChanged], and the File stays failed: every later
// read fails too, even of blocks already cached, so no reader gets a mix
// of two versions. A server that sends no validator is still checked on
// size, and Open logs that this is all it can check.
//
// Answers are never trusted further than HTTP's rules allow: a
// Content-Range for other bytes, more bytes than asked for, a body that is
// compressed or multipart, or a size beyond reason is an [ErrProtocol]
// error, and nothing outside the requested range is ever read into a
// block. No request allocates more than one block at a time.
//
// Reads never hang: a request that makes no progress for RequestTimeout
// (no headers, or a body that stalls) is abandoned and retried, as are
// dropped connections, truncated bodies, 5xx, 408 and 429 (after the
// server's Retry-After, capped), with exponential backoff and jitter,
// until the retries run out and the read fails with [ErrUnavailable].
// [File.ReadAtContext] returns as soon as its context ends.
//
// Credentials (Header, URL userinfo, netrc, or what a Sign hook sets, such
// as the SigV4 signature package remote/s3 computes afresh for every
// attempt) are sent, never logged: URLs in logs and errors lose their
// userinfo and query string (where presigned URLs keep their signatures),
// or are replaced by Options.Name.
//
// # Cost
//
// The file is read in aligned blocks (BlockSize, 1 MiB by default) kept in
// a bounded LRU in memory and, optionally, in a bounded cache directory
// that survives the mount. Open costs one request, which also brings in
// the first block (where an OVA's first tar header is). A cached block
// costs no request; concurrent reads of a block share one request; a read
// spanning several missing blocks asks for adjacent ones in one request
// and for the rest in parallel, within Connections requests at a time.
// Sequential readers get the next blocks fetched ahead of them.
//
// # What it refuses
//
// Open fails with [ErrNoRanges] for a server that answers a range request
// with the whole file: reading an archive through it would mean
// downloading all of it for every read. Its body is closed unread. A file
// no larger than one block is the exception, as the whole file is the
// first block.
package remote
