// Package regf reads Windows registry hives (the "regf" format of
// SOFTWARE, SYSTEM, NTUSER.DAT): keys, their subkeys and values, looked
// up by path as Windows does, ignoring case.
//
// It reads through an io.ReaderAt on demand, so a hive of a hundred
// megabytes inside a guest filesystem costs only the cells a lookup
// touches. It takes hostile input: every offset is checked against the
// hive's data area, every list's length against the cell holding it, a
// value's data against the limit its reader gives, and an enumeration
// of subkeys ends after as many keys as the hive has room for, so an
// index that repeats a list or points back at itself ends with an error
// wrapping ErrCorrupt instead of looping.
//
// What it refuses: it never writes, and it reads a hive as it stands: the
// transaction logs (.LOG1, .LOG2) of a hive that was not written cleanly
// are not applied (Hive.Warnings says so). Security records, class
// names and the free cells of deleted keys are not read.
//
// Why not a library: www.velocidex.com/golang/regparser, the pure-Go
// candidate, recurses through index records without a bound (an index
// listing itself overflows the stack, which no recover catches), and
// copies value data one byte per ReadAt call for sizes taken from the
// file.
package regf
