// Package nbd is a small NBD (Network Block Device) server: it serves a
// fixed set of named exports, disk images behind the Export interface, to
// NBD clients such as qemu, nbdcopy, nbdinfo and the Linux kernel's nbd
// driver (through nbd-client).
//
// It is written from the protocol specification
// (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md)
// because no well-kept Go NBD library exists; it implements what those
// clients use and refuses the rest by the specification's rules.
//
// # What it speaks
//
// The fixed newstyle handshake only (never oldstyle), with
// NBD_FLAG_NO_ZEROES. Options: NBD_OPT_EXPORT_NAME, ABORT, LIST, STARTTLS
// (when Options.TLS is set), INFO and GO (answering NBD_INFO_EXPORT,
// BLOCK_SIZE, and NAME and DESCRIPTION when asked), STRUCTURED_REPLY, and
// LIST_META_CONTEXT and SET_META_CONTEXT for the one context served,
// base:allocation. Any other option gets NBD_REP_ERR_UNSUP; extended
// headers (64-bit requests) are among them.
//
// Transmission: READ, BLOCK_STATUS, DISC, and, only for an export that
// implements Writer, WRITE, FLUSH, TRIM and WRITE_ZEROES (with FUA, which
// flushes after the command, and NO_HOLE). With structured replies, a READ
// sends the runs of 64 KiB or more that Export.Extents reports as zero as
// NBD_REPLY_TYPE_OFFSET_HOLE chunks and the rest as OFFSET_DATA (one data
// chunk with NBD_CMD_FLAG_DF). BLOCK_STATUS answers base:allocation from
// Export.Extents, honouring NBD_CMD_FLAG_REQ_ONE, with at most 65,536
// descriptors a reply. NBD_CMD_CACHE, FAST_ZERO and RESIZE are
// not offered and get NBD_EINVAL, as does any unknown command or flag.
//
// # Read-only and multi-connection
//
// An export without Writer is offered with NBD_FLAG_READ_ONLY, and every
// write-like command on it gets NBD_EPERM. Every export is offered with
// NBD_FLAG_CAN_MULTI_CONN: a client may spread its requests over several
// connections, which is why Writer.Flush must cover writes made on all of
// them.
//
// # Limits
//
// Nothing a client claims is allocated before it is checked. An option is
// at most 16 KiB (four names' worth); a longer one, a bad magic number, or
// a WRITE longer than MaxPayload (32 MiB, advertised as the maximum block
// size) drops that client, since the stream cannot be followed past them.
// A READ over MaxPayload gets NBD_EOVERFLOW (NBD_EINVAL without structured
// replies), a request past the end of the export NBD_EINVAL (NBD_ENOSPC
// for writes); the connection carries on.
//
// Each connection serves up to Options.MaxInFlight requests at once, and
// holds at most Options.MaxInFlightBytes of their payloads; replies go out
// as requests finish, in any order, as the protocol allows. A client that
// stops reading its replies stalls only its own connection, and is dropped
// once a reply has waited Options.ReplyTimeout; negotiation must finish
// within Options.HandshakeTimeout. When a connection ends, the context
// passed to its requests' Export calls is cancelled. The number of
// connections is not limited here.
//
// # Errors
//
// A failing Export or Writer call is answered NBD_EIO, with its error text
// in the structured error chunk (clients show it), and logged once.
//
// # TLS
//
// With Options.TLS, clients may upgrade with NBD_OPT_STARTTLS; with
// Options.RequireTLS too, every other option is refused with
// NBD_REP_ERR_TLS_REQD until they do (the specification's FORCEDTLS
// mode). Client certificates are required by setting ClientAuth and
// ClientCAs in the tls.Config. Listen refuses to listen on a TCP address
// other hosts can reach unless TLS is required or the caller insists.
package nbd
