package ova

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"

	"github.com/ovfmount/ovfmount/internal/cachefile"
)

// ZipOptions tunes OpenZip.
type ZipOptions struct {
	// Span is the checkpoint spacing of the indexes built over deflated
	// entries (see gzindex.Options.Span): a random read decodes at most
	// this much before its data. 0 means DefaultZipSpan.
	Span int64
	// Eager makes OpenZip prepare every entry before it returns (see
	// Member.Prepare): it builds the deflate indexes and checks every
	// CRC-32 now, reading the whole archive, and fails if any entry is
	// damaged or unreadable. That is what a verify wants; a mount leaves
	// it false and pays for an entry's index at its first read.
	Eager bool
	// Context cancels an eager OpenZip; nil means context.Background.
	Context context.Context
	// Progress, if not nil, is told how an eager OpenZip advances: the
	// entry being prepared, and its compressed bytes done out of total.
	Progress func(m *Member, done, total int64)
	// CacheDir, if not "", keeps the deflate indexes between runs, in
	// files named after the archive (Archive.Identity of Source) and the
	// entry, so that a later mount of the same file serves a deflated
	// entry without a pass over it. A saved index is used only when it is
	// a raw deflate index of the entry's size whose identity matches the
	// entry's data (gzindex.Index.Matches); the pass that built it checked
	// the CRC-32. Saving is best effort: a failure only means the next run
	// builds the index again.
	CacheDir string
	// Source identifies the archive file (FileIdentity of a local file);
	// nil keeps nothing in CacheDir.
	Source []byte
}

// DefaultZipSpan is the checkpoint spacing of a deflated entry's index
// when ZipOptions.Span is 0: the spacing package logical gives a gzip
// file's (a random read decodes 1 MiB on average, a few ms), so that a
// disk reads alike from a zip and from a gzip-compressed OVA.
const DefaultZipSpan = 2 << 20

// IsZip reports whether r looks like a zip archive: a local file header
// at its start, or the end record of an empty zip. It reads 4 bytes and
// judges by content only, never by name.
func IsZip(r io.ReaderAt, size int64) bool {
	if size < endLen {
		return false
	}
	var b [4]byte
	if readFull(r, b[:], 0) != nil {
		return false
	}
	sig := le.Uint32(b[:])
	return sig == sigLocal || sig == sigEnd && size <= endLen+maxComment
}

// OpenZip indexes the zip archive of size bytes that r reads. The central
// directory is the index: OpenZip reads it and every entry's local header,
// never the entries' data (unless opt.Eager) except a symlink's target, so
// it costs the number of entries, not their size. It fails with ErrNotZip when r has no end of
// central directory record, and with ErrZipCorrupt when the directory
// cannot be trusted; damage confined to some entries is a Warning and those
// entries are left out.
func OpenZip(r io.ReaderAt, size int64, opt ZipOptions) (*Archive, error) {
	if size < endLen {
		return nil, fmt.Errorf("ova: zip: %d bytes is too short for a zip archive: %w", size, ErrNotZip)
	}
	if opt.Span <= 0 {
		opt.Span = DefaultZipSpan
	}
	z := &zipIndex{r: r, size: size, opt: opt, tree: newTree(r)}
	if err := z.index(); err != nil {
		return nil, err
	}
	a := newArchive(size, z.tree.members(), append(z.warn, z.tree.warn...))
	a.zip = true
	if ident := a.Identity(opt.Source); opt.CacheDir != "" && ident != nil {
		for _, m := range a.Files() {
			if m.zip != nil && m.zip.inflate != nil {
				m.zip.inflate.cache = cachefile.Path(opt.CacheDir, "zipindex", ident, m.Name)
			}
		}
	}
	if opt.Eager {
		ctx := opt.Context
		if ctx == nil {
			ctx = context.Background()
		}
		if err := a.prepareAll(ctx, opt.Progress); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// zipIndex holds the state of one OpenZip.
type zipIndex struct {
	r    io.ReaderAt
	size int64
	opt  ZipOptions
	tree *tree
	warn []Warning
}

func (z *zipIndex) warnf(off int64, name, format string, args ...any) {
	z.warn = append(z.warn, Warning{Offset: off, Name: name, Msg: fmt.Sprintf(format, args...)})
}

// zipSpan is an entry whose local header was read: where its bytes are.
type zipSpan struct {
	e       *centralEntry
	dataOff int64 // first byte of its (compressed) data
	end     int64 // end of its data
}

func (z *zipIndex) index() error {
	end, err := findEnd(z.r, z.size, func(off int64, format string, args ...any) { z.warnf(off, "", format, args...) })
	if err != nil {
		if errors.Is(err, ErrNotZip) && IsZip(z.r, z.size) {
			return fmt.Errorf("ova: zip: the file starts like a zip archive but has no end of central directory record (truncated?): %w", ErrZipCorrupt)
		}
		return err
	}
	cdStart, prefix, err := z.locateDirectory(end)
	if err != nil {
		return err
	}
	entries, err := readDirectory(z.r, cdStart, end.cdSize, prefix)
	if err != nil {
		return err
	}
	n := uint64(len(entries))
	if n != end.entries && (end.zip64 || n&0xffff != end.entries) {
		z.warnf(end.at, "", "the end record counts %d entries, the central directory holds %d; all %d are indexed", end.entries, n, n)
	}
	var spans []zipSpan
	for _, e := range entries {
		if s, ok := z.local(e, cdStart); ok {
			spans = append(spans, s)
		}
	}
	spans = z.dropOverlaps(spans)
	for _, s := range spans {
		z.add(s)
	}
	return nil
}

// locateDirectory checks that the directory lies inside the file, before
// its end record, and finds how many bytes precede the archive: a
// self-extractor stub, or anything prepended, shifts every offset the
// archive records by the same amount.
func (z *zipIndex) locateDirectory(end zipEnd) (start, prefix int64, err error) {
	if end.cdSize > end.dirEnd || end.cdOff > end.dirEnd-end.cdSize {
		return 0, 0, fmt.Errorf("ova: zip: the central directory (%d bytes at offset %d) does not fit before its end record at offset %d: %w",
			end.cdSize, end.cdOff, end.dirEnd, ErrZipCorrupt)
	}
	if end.cdSize == 0 {
		return end.cdOff, 0, nil
	}
	if z.signatureAt(end.cdOff, sigCentral) {
		if gap := end.dirEnd - end.cdOff - end.cdSize; gap > 0 {
			z.warnf(end.cdOff+end.cdSize, "", "%d bytes between the central directory and its end record are ignored", gap)
		}
		return end.cdOff, 0, nil
	}
	prefix = end.dirEnd - end.cdSize - end.cdOff
	if prefix > 0 && z.signatureAt(end.cdOff+prefix, sigCentral) {
		z.warnf(0, "", "%d bytes precede the zip archive (a self-extractor?); its offsets are taken from there", prefix)
		return end.cdOff + prefix, prefix, nil
	}
	return 0, 0, fmt.Errorf("ova: zip: no central directory at offset %d, where the end record says: %w", end.cdOff, ErrZipCorrupt)
}

func (z *zipIndex) signatureAt(off int64, sig uint32) bool {
	var b [4]byte
	return off >= 0 && off <= z.size-4 && readFull(z.r, b[:], off) == nil && le.Uint32(b[:]) == sig
}

// local reads an entry's local header, which says where its data starts,
// and checks that it agrees with the central directory. An entry whose
// local header is missing or disagrees is left out, with a warning: which
// of the two to believe cannot be known, and they differ only in damaged
// or crafted archives.
func (z *zipIndex) local(e *centralEntry, cdStart int64) (zipSpan, bool) {
	name := e.displayName()
	drop := func(format string, args ...any) (zipSpan, bool) {
		z.warnf(e.localOff, name, "entry %d not mounted: %s", e.index, fmt.Sprintf(format, args...))
		return zipSpan{}, false
	}
	if e.bad != "" {
		return drop("%s", e.bad)
	}
	if e.localOff < 0 || e.localOff > cdStart-localLen {
		return drop("its local header offset %d is not before the central directory at %d", e.localOff, cdStart)
	}
	head := make([]byte, localLen+len(e.rawName))
	if int64(len(head)) > cdStart-e.localOff {
		return drop("its local header at offset %d runs into the central directory", e.localOff)
	}
	if err := readFull(z.r, head, e.localOff); err != nil {
		return drop("reading its local header: %v", err)
	}
	if le.Uint32(head) != sigLocal {
		return drop("no local header signature at offset %d", e.localOff)
	}
	lflags, lmethod := le.Uint16(head[6:]), le.Uint16(head[8:])
	lcrc := le.Uint32(head[14:])
	lcsize, lusize := int64(le.Uint32(head[18:])), int64(le.Uint32(head[22:]))
	nl, xl := int64(le.Uint16(head[26:])), int64(le.Uint16(head[28:]))
	if !bytes.Equal(head[localLen:localLen+min(nl, int64(len(e.rawName)))], e.rawName) || nl != int64(len(e.rawName)) {
		return drop("its local header names %q", head[localLen:localLen+min(nl, int64(len(e.rawName)))])
	}
	if lmethod != e.method {
		return drop("its local header says compression method %d, the central directory %d", lmethod, e.method)
	}
	if lflags&zipFlagEncrypted != e.flags&zipFlagEncrypted {
		return drop("its local and central headers disagree on encryption")
	}
	dataOff := e.localOff + localLen + nl + xl
	if e.flags&zipFlagDescriptor == 0 && lflags&zipFlagDescriptor == 0 {
		if lcsize == 0xffffffff || lusize == 0xffffffff {
			x := make([]byte, xl)
			if dataOff > cdStart || readFull(z.r, x, e.localOff+localLen+nl) != nil {
				return drop("reading its local extra fields")
			}
			lusize, lcsize = local64(x, lusize, lcsize)
		}
		if lcrc != e.crc || lcsize != e.csize || lusize != e.usize {
			return drop("its local header records CRC-32 %08x and sizes %d/%d, the central directory %08x and %d/%d",
				lcrc, lcsize, lusize, e.crc, e.csize, e.usize)
		}
	}
	if e.csize > cdStart-dataOff {
		return drop("its %d bytes of data at offset %d run into the central directory at %d", e.csize, dataOff, cdStart)
	}
	return zipSpan{e: e, dataOff: dataOff, end: dataOff + e.csize}, true
}

// local64 takes the sizes from a local header's zip64 extra field, which,
// unlike the central one, holds both sizes whenever it is there.
func local64(x []byte, usize, csize int64) (int64, int64) {
	for len(x) >= 4 {
		id, n := le.Uint16(x), int(le.Uint16(x[2:]))
		if 4+n > len(x) {
			break
		}
		if id == 0x0001 && n >= 16 {
			return int64(le.Uint64(x[4:])), int64(le.Uint64(x[12:]))
		}
		x = x[4+n:]
	}
	return usize, csize
}

// dropOverlaps leaves out entries whose bytes (local header and data)
// overlap an earlier entry's. No zip tool writes such an archive; a crafted
// one uses them to make a small file unpack to a huge tree (the
// overlapping "zip bomb"), or to show one entry's bytes under two names.
// The entry that starts first in the file is kept, and each one left out
// is a Warning, so that the rest of the archive stays usable, as with
// other damage confined to some entries. Spans come back in directory
// order, which decides which of two equal names wins.
func (z *zipIndex) dropOverlaps(spans []zipSpan) []zipSpan {
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return spans[order[a]].e.localOff < spans[order[b]].e.localOff })
	keep := make([]bool, len(spans))
	var reach int64 = -1 // end of the kept spans so far
	var last *centralEntry
	for _, i := range order {
		s := spans[i]
		if s.e.localOff < reach {
			z.warnf(s.e.localOff, s.e.displayName(), "entry %d not mounted: its bytes overlap those of entry %d %q (an overlapping-entry zip bomb?)",
				s.e.index, last.index, last.displayName())
			continue
		}
		keep[i] = true
		reach, last = s.end, s.e
	}
	out := spans[:0]
	for i, s := range spans {
		if keep[i] {
			out = append(out, s)
		}
	}
	return out
}

// readFull reads len(p) bytes at off, or fails.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	k, err := r.ReadAt(p, off)
	if k == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
