// Package overlay is the copy-on-write store that makes a disk view
// writable while the archive under it stays read-only: `--overlay DIR`.
// Writes go to DIR, one overlay per disk; reads take each 4 KiB block from
// the overlay when it holds the block and from the base (the decoded,
// verified view of the archive) otherwise.
//
// # What it promises
//
//   - A disk's size never changes: WriteAt, WriteZeroes and Discard past
//     the end fail with ErrPastEnd, and nothing is written.
//   - The archive is never written: the base is only read.
//   - A folder belongs to one archive. Open compares Identity.Key with the
//     one recorded when the folder was made and refuses another with
//     ErrOtherArchive, naming both; when Identity.Name matches but the Key
//     does not, the message says that the archive changed. One process at
//     a time holds a folder (flock; ErrBusy otherwise).
//   - Crash consistency: a write that returned before a Sync was called
//     survives, once that Sync returns, SIGKILL, and power loss as far as the host filesystem
//     honours fdatasync. Writes not synced may be lost, but after a crash
//     the disk is exactly as it was at some commit: never part of a write
//     within a block, and never blocks of two commits mixed (a commit
//     covers every write that returned before it). The caller serves
//     fsync, fdatasync, and writes to files opened O_SYNC or O_DIRECT, by
//     calling Sync (after the write, for the latter two).
//   - Discard (FALLOC_FL_PUNCH_HOLE, the loop driver's discards) and
//     WriteZeroes make a range read as zeros; their whole blocks then take
//     no space, and the space they held is punched out of the data file at
//     the next commit. A whole block written with zeros is held the same
//     way. A range of whole blocks is one journal entry, and a whole
//     16 MiB of them one pointer in memory, so discarding a whole disk
//     (mkfs, fstrim) is cheap.
//   - Concurrency: every method is safe for concurrent use. Writes to one
//     block are serialised (a write covering part of a block reads the
//     block, merges, and writes it whole, under a per-block lock); a read
//     sees each block before or after a concurrent write, never a mix.
//   - Hostile files: whatever the folder holds, opening it never panics
//     and allocates in proportion to the files' sizes and the disk's:
//     a damaged header, a record whose checksum is right but whose
//     contents are impossible (a block past the disk, space past the data
//     file, two blocks sharing space, an unknown kind) is refused with
//     ErrCorrupt. A record that is cut short or fails its checksum ends the
//     journal: the disk opens as of the last whole commit before it, and
//     the tail is cut (Disk.Warnings says so). A crash can only tear the
//     last append, so that is exact recovery; damage further back rolls
//     the disk back to that earlier commit, and the blocks whose space
//     later commits reused then read that later data.
//
// Bytes from the base are verified by the base as before. Bytes from the
// overlay are the guest's own: Modified says a disk has some, and Extent
// tells which ranges are the overlay's.
//
// # What it does not do
//
// Disks larger than 64 TiB are refused. Overlays do not grow or shrink
// disks, do not keep snapshots or history, and do not share blocks
// between disks. There is no "revert to the
// archive" for a range: discarded blocks read as zeros, not as the base.
// A filesystem that cannot punch holes keeps freed space allocated
// (it is still reused).
//
// # Files
//
// DIR holds:
//
//	overlay.json     the identity record: {"format":"ovfmount-overlay",
//	                 "version":1,"key","name","describe","created"};
//	                 written once, atomically (temporary file, fsync,
//	                 rename, fsync of DIR)
//	overlay.lock     held with flock(LOCK_EX) while a Store is open
//	NAME.data        the data file: slot i is bytes [i*4096, (i+1)*4096)
//	NAME.journal     the block map, as a journal (below)
//
// A disk's bytes are never overwritten where a commit can see them: every
// write puts whole blocks in free slots of NAME.data, then updates the
// in-memory map. Sync fdatasyncs NAME.data, then appends the map updates
// and a commit record to NAME.journal and fdatasyncs it; only then do the
// slots that commit released become free (punched, and reused). A commit
// that finds the journal larger than 4 MiB plus twice the map's own size
// writes a checkpoint instead: a new journal holding the whole map and
// one commit, written to NAME.journal.tmp, synced and renamed over the
// old one (Store.Close always does). Opening replays the journal up to its
// last valid commit, cuts what follows, truncates the data file after the
// last slot in use and punches every free slot (uncommitted writes).
//
// # Journal format
//
// All integers are little-endian; checksums are CRC-32C (Castagnoli).
//
//	header, 64 bytes:
//	  0  magic "OVFMJRNL"
//	  8  version u32 = 1
//	 12  block size u32 = 4096
//	 16  disk size u64 (bytes)
//	 24  created, Unix nanoseconds u64
//	 32  reserved, zero (28 bytes)
//	 60  CRC-32C of bytes 0-59 u32
//
//	record, repeated to the end of the file:
//	  0  kind u8: 1 map, 2 commit, 3 zero range
//	  1  reserved, zero (3 bytes)
//	  4  payload length n u32 (at most 16 MiB)
//	  8  payload (n bytes)
//	8+n  CRC-32C of bytes 0 to 8+n u32
//
//	map payload: entries of 16 bytes, applied in order:
//	  0  disk block u64 (offset / 4096)
//	  8  data slot u64, or 2^64-1: the block reads as zeros
//
//	zero-range payload: entries of 16 bytes, applied in order:
//	  0  first disk block u64
//	  8  block count u64 (at least 1, within the disk)
//
//	commit payload, 16 bytes:
//	  0  sequence number u64 (counts commits, including checkpoints)
//	  8  time, Unix nanoseconds u64
//
// Map and zero-range records take effect, in file order, at the commit
// record that follows them; records after the last commit are ignored. A block absent from every
// record reads from the base. A disk whose size is not a multiple of 4096
// has a short last block; its slot holds only the bytes inside the disk.
//
// # Export
//
// ExportImage writes base plus overlay as a standalone raw image (sparse)
// or QCOW2 (version 3, 64 KiB clusters, 16-bit refcounts, no backing
// file, only clusters holding a non-zero byte), equal to reading the view;
// qcow2.go describes the layout. Exporting needs the Store, so it cannot
// run while a mount holds the folder; ReadStatus can.
package overlay
