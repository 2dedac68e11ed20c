// Package audit keeps a mount's read audit log: a file of JSON lines that
// records every open of a file on the mount and every range of it the
// daemon served, each line carrying the SHA-256 of the line before it, so
// that the log is a hash chain and an edit, a removal or a reordering of
// its lines is found by [Verify]. It knows nothing of FUSE: the mount
// calls [Log.Open], [File.Read] and [File.Release] (see package fs's
// Observer), and the CLI's "audit verify" calls [Verify].
//
// # Lines
//
// Every line is one JSON object (a [Record]) with "seq" (0 for a log's
// first line, then one more on each line, across sessions), "prev" (the
// lowercase hex SHA-256 of the previous line's bytes, without its newline;
// "" on the first line) and "type":
//
//   - "start": a mount began appending (archive, identity, mountpoint,
//     program, daemonPid). A log's first line is always one; a mount that
//     appends to an existing log continues its chain with another.
//   - "open": a reader opened path (open is its number in the session,
//     reader its pid, uid and gid, from the FUSE request).
//   - "read": ranges of that open file served, coalesced: sorted, merged
//     where adjacent or overlapping, with their total bytes, the first and
//     last time a read of them was served, and the readers (pid, uid,
//     gid) whose requests they answered.
//   - "close": the file was released (its last descriptor closed and its
//     last mapping gone); "unclosed": true when the mount stopped first.
//   - "stop": the mount stopped and the log was closed cleanly.
//
// A file's ranges are written as a line when it is closed, when 1,000
// ranges have gathered, and at least once a second while it stays open,
// and the log is fsynced once a second (when anything was written) and
// when it is closed.
//
// # What "logged" means
//
// A read is answered only after its range is recorded in the log's memory
// (the open file's pending ranges), and only while the log has never
// failed. Recorded ranges are written to the file within a second, and
// made durable by the fsync that follows; so a kill -9 of the daemon
// loses the records not yet written (about the last second of reads), and
// a crash of the machine those not yet fsynced (about two), which is the
// trade-off of writing and fsyncing once a second rather than on every
// read. Once a write or an fsync of the log fails, every
// later open and read fails (the mount answers EIO) rather than serving
// bytes that could not be logged; the records still in memory are lost
// with the error, and the daemon's log says how many.
//
// The ranges are what the daemon served the kernel. Without direct I/O
// the kernel reads ahead of a reader, so a read line can cover more than
// the reader asked for; every byte a reader got from the mount was served
// by some logged read (each open drops the file's cached pages, so one
// open's reads are not answered from another's cache, except while two
// opens of a file overlap in time). With direct I/O (-o direct_io) the
// ranges are the reads the readers made.
//
// # What the chain proves
//
// A line changed, removed or moved breaks the chain at the line after it.
// The last line has no line after it: its SHA-256, the head, is what
// [Verify] reports and the mount logs when it stops, and a head recorded
// elsewhere proves that line and everything before it (verify --head).
// Lines cut from the end of the log are found the same way; a line cut in
// the middle is found by its missing newline. The chain has no key: whoever
// can write the file can rebuild it whole, so it is a head kept elsewhere
// that proves nothing before it changed.
package audit
