package ova

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/ovfmount/ovfmount/gzindex"
	"github.com/ovfmount/ovfmount/internal/cachefile"
)

// Compression methods (APPNOTE 4.4.5) a zip entry may name.
const (
	methodStored  = 0
	methodDeflate = 8
	methodAES     = 99
)

func methodName(m uint16) string {
	switch m {
	case 1:
		return "shrink"
	case 6:
		return "implode"
	case 9:
		return "deflate64"
	case 12:
		return "bzip2"
	case 14:
		return "LZMA"
	case 93:
		return "Zstandard"
	case 95:
		return "XZ"
	case 98:
		return "PPMd"
	case methodAES:
		return "WinZip AES encryption"
	}
	return "unknown"
}

// zipMember is what a member of a zip archive adds: where its compressed
// bytes are and what the directory records about them. For a deflated or
// unreadable entry it is also the member's source of logical bytes.
type zipMember struct {
	name    string
	index   int
	method  uint16
	crc     uint32
	csize   int64
	dataOff int64
	src     io.ReaderAt  // the archive
	inflate *lazyInflate // deflated entries
	err     error        // why the entry cannot be read, if it cannot
}

// plain reports whether the member's bytes are stored as they are, so
// that they are a range of the archive like a tar member's.
func (z *zipMember) plain() bool { return z.method == methodStored && z.err == nil }

// ReadAt reads logical bytes of a deflated or unreadable entry.
func (z *zipMember) ReadAt(p []byte, off int64) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	rd, err := z.inflate.reader(context.Background(), nil)
	if err != nil {
		return 0, err
	}
	return rd.ReadAt(p, off)
}

// lazyInflate builds the random-access index of a deflated entry once, at
// its first read (or Prepare), however many reads ask at the same time:
// the index costs one pass over the entry, which a mount must not pay for
// entries nobody reads. A build that finds the data damaged fails every
// later read the same way; one that was cancelled, or could not read the
// archive, is tried again by the next read.
//
// The index stays, but the decoders a gzindex.Reader keeps (about 600 KiB
// each) are only kept for the most recently read entries (see
// maxActiveInflates): an archive of many deflated entries, each read once,
// must not hold a decoder for every one of them.
type lazyInflate struct {
	z     *zipMember
	usize int64
	span  int64
	mu    sync.Mutex
	ix    *gzindex.Index
	rd    *gzindex.Reader // nil when evicted; rebuilt from ix
	err   error
	cache string // where the index is kept between runs, if anywhere
}

func (l *lazyInflate) reader(ctx context.Context, progress func(done int64)) (*gzindex.Reader, error) {
	l.mu.Lock()
	rd, err := l.readerLocked(ctx, progress)
	l.mu.Unlock()
	if rd != nil {
		activeInflates.touch(l)
	}
	return rd, err
}

func (l *lazyInflate) readerLocked(ctx context.Context, progress func(done int64)) (*gzindex.Reader, error) {
	if l.err != nil {
		return nil, l.err
	}
	z := l.z
	sec := io.NewSectionReader(z.src, z.dataOff, z.csize)
	if l.ix == nil {
		l.ix = l.load(sec)
	}
	if l.ix == nil {
		ix, err := gzindex.BuildContext(ctx, sec, z.csize, gzindex.Options{
			Span:     l.span,
			Progress: progress,
			Raw:      &gzindex.RawCheck{CRC32: z.crc, Size: l.usize},
		})
		if err != nil {
			damaged := false
			for _, s := range []error{gzindex.ErrCorrupt, gzindex.ErrChecksum, gzindex.ErrTruncated, gzindex.ErrTrailingData} {
				damaged = damaged || errors.Is(err, s)
			}
			if !damaged {
				return nil, fmt.Errorf("ova: zip: entry %d %q: indexing its deflate data: %w", z.index, z.name, err)
			}
			l.err = fmt.Errorf("ova: zip: entry %d %q: its deflate data does not match the directory: %w: %w", z.index, z.name, ErrZipCorrupt, err)
			return nil, l.err
		}
		l.ix = ix
		l.save()
	} else if progress != nil {
		progress(z.csize)
	}
	if l.rd == nil {
		l.rd = gzindex.NewReader(sec, z.csize, l.ix)
	}
	return l.rd, nil
}

// load returns the index an earlier run saved for this entry, if it fits
// the entry's data; a saved index that does not is removed.
func (l *lazyInflate) load(sec *io.SectionReader) *gzindex.Index {
	if l.cache == "" {
		return nil
	}
	b, err := os.ReadFile(l.cache)
	if err != nil {
		return nil
	}
	ix, err := gzindex.Unmarshal(b)
	if err != nil || !ix.Raw() || ix.Size() != l.usize || !ix.Matches(sec, l.z.csize) {
		os.Remove(l.cache)
		return nil
	}
	return ix
}

// save keeps the index for a later run, best effort.
func (l *lazyInflate) save() {
	if l.cache == "" {
		return
	}
	if b, err := l.ix.MarshalBinary(); err == nil {
		cachefile.Write(l.cache, b)
	}
}

// forgetInflates drops the decoders of the archive's deflated entries, and
// their place among those kept.
func (a *Archive) forgetInflates() {
	mine := map[*lazyInflate]bool{}
	for _, m := range a.members {
		if m.zip != nil && m.zip.inflate != nil {
			mine[m.zip.inflate] = true
		}
	}
	if len(mine) == 0 {
		return
	}
	activeInflates.mu.Lock()
	kept := activeInflates.list[:0]
	for _, l := range activeInflates.list {
		if !mine[l] {
			kept = append(kept, l)
		}
	}
	clear(activeInflates.list[len(kept):])
	activeInflates.list = kept
	activeInflates.mu.Unlock()
	for l := range mine {
		l.mu.Lock()
		l.rd = nil
		l.mu.Unlock()
	}
}

// maxActiveInflates is how many deflated entries keep their decoders
// between reads, process-wide: enough for a guest's disks and the files
// read beside them, and a bound of a few dozen MiB whatever the archives.
const maxActiveInflates = 16

// activeInflates lists the entries that keep decoders, the most recently
// read last.
var activeInflates inflateLRU

type inflateLRU struct {
	mu   sync.Mutex
	list []*lazyInflate
}

// touch marks l as just read, and drops the Reader of the entry read
// longest ago when too many are kept. A read still using that Reader
// finishes with it; the next read of the entry makes a new one from its
// index.
func (a *inflateLRU) touch(l *lazyInflate) {
	a.mu.Lock()
	for i, x := range a.list {
		if x == l {
			copy(a.list[i:], a.list[i+1:])
			a.list = a.list[:len(a.list)-1]
			break
		}
	}
	a.list = append(a.list, l)
	var evict *lazyInflate
	if len(a.list) > maxActiveInflates {
		evict = a.list[0]
		a.list = append(a.list[:0], a.list[1:]...)
	}
	a.mu.Unlock()
	if evict != nil {
		evict.mu.Lock()
		evict.rd = nil
		evict.mu.Unlock()
	}
}

// Prepare does now what the member's first read would do, and checks it
// against what the archive records, so that a verify can report damage
// (and its progress) before anything is served. For a deflated zip entry
// it builds the index of its data, checking the CRC-32 and size the
// directory records; for a stored zip entry it reads the data and checks
// its CRC-32; for an entry that cannot be read it returns why. progress,
// if not nil, is told the compressed bytes done out of total. Members of a
// tar archive or folder need nothing and return nil.
func (m *Member) Prepare(ctx context.Context, progress func(done, total int64)) error {
	z := m.zip
	if z == nil || m.Type != TypeFile {
		return nil
	}
	report := func(done int64) {
		if progress != nil {
			progress(done, z.csize)
		}
	}
	switch {
	case z.err != nil:
		return z.err
	case z.inflate != nil:
		_, err := z.inflate.reader(ctx, report)
		return err
	}
	crc, err := crcOf(ctx, z.src, z.dataOff, z.csize, report)
	if err != nil {
		return fmt.Errorf("ova: zip: entry %d %q: %w", z.index, z.name, err)
	}
	if crc != z.crc {
		return fmt.Errorf("ova: zip: entry %d %q: its data's CRC-32 is %08x, the directory records %08x: %w", z.index, z.name, crc, z.crc, ErrZipCorrupt)
	}
	return nil
}

// crcOf computes the CRC-32 of n bytes at off.
func crcOf(ctx context.Context, r io.ReaderAt, off, n int64, progress func(int64)) (uint32, error) {
	buf := make([]byte, min(n, 1<<20))
	var crc uint32
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		p := buf[:min(int64(len(buf)), n-done)]
		if err := readFull(r, p, off+done); err != nil {
			return 0, fmt.Errorf("reading archive offset %d: %w", off+done, err)
		}
		crc = crc32.Update(crc, crc32.IEEETable, p)
		done += int64(len(p))
		progress(done)
	}
	return crc, nil
}

// prepareAll prepares every zip entry, in name order, and joins the
// failures; cancellation stops it at once.
func (a *Archive) prepareAll(ctx context.Context, progress func(m *Member, done, total int64)) error {
	var errs []error
	for _, m := range a.Files() {
		var p func(done, total int64)
		if progress != nil {
			p = func(done, total int64) { progress(m, done, total) }
		}
		if err := m.Prepare(ctx, p); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Unix file types in the high bits of a mode.
const (
	unixTypeMask = 0o170000
	unixDir      = 0o040000
	unixRegular  = 0o100000
	unixSymlink  = 0o120000
)

// add turns an entry whose bytes are located into a member of the tree.
func (z *zipIndex) add(s zipSpan) {
	e := s.e
	name, note := zipName(e)
	ent := &entry{hdrOff: e.localOff, rawName: name, uid: e.uid, gid: e.gid, mtime: e.mtime}
	if ent.mtime.IsZero() {
		ent.mtime = dosTime(e.dosDate, e.dosTime)
	}
	if note != "" {
		z.warnf(e.localOff, e.displayName(), "%s", note)
	}
	unixMode := e.extAttr >> 16
	hasUnix := (e.creator == hostUnix || e.creator == hostOSX) && unixMode != 0
	kind := uint32(unixRegular)
	switch {
	case hasUnix && unixMode&unixTypeMask != 0:
		kind = unixMode & unixTypeMask
	case strings.HasSuffix(name, "/"), msdosHost(e.creator) && e.extAttr&0x10 != 0:
		kind = unixDir
	}
	if strings.HasSuffix(name, "/") {
		kind = unixDir // the name decides, as for every unzip
	}
	switch {
	case hasUnix:
		ent.mode = int64(unixMode & 0o777)
	case kind == unixDir:
		ent.mode = 0o755
	case msdosHost(e.creator) && e.extAttr&1 != 0: // MS-DOS read-only
		ent.mode = 0o444
	default:
		ent.mode = 0o644
	}
	clean, ok := z.tree.checkedName(ent)
	if !ok {
		return
	}
	switch kind {
	case unixDir:
		z.tree.dir(clean, ent)
	case unixRegular:
		if clean == "" {
			z.tree.warnf(ent, "not mounted: a file with an empty name")
			return
		}
		z.tree.leaf(clean, ent, z.file(s, clean))
	case unixSymlink:
		target, err := z.linkTarget(s)
		if err != nil || clean == "" || target == "" || len(target) > 4095 || containsNUL(target) {
			z.tree.warnf(ent, "symlink not mounted: its name or target is invalid (%v)", err)
			return
		}
		z.tree.leaf(clean, ent, &Member{Type: TypeSymlink, Linkname: target})
	default:
		z.tree.warnf(ent, "special file (mode %o) skipped", unixMode)
	}
}

// file makes the member of a regular file entry. A stored entry's bytes
// are a range of the archive, exactly like a tar member's; a deflated
// entry's come from its lazily built index; any other entry is listed but
// fails every read with ErrZipUnsupported.
func (z *zipIndex) file(s zipSpan, name string) *Member {
	e := s.e
	zm := &zipMember{name: name, index: e.index, method: e.method, crc: e.crc, csize: e.csize, dataOff: s.dataOff, src: z.r}
	m := &Member{Type: TypeFile, Size: e.usize, avail: e.usize, zip: zm}
	switch {
	case e.flags&zipFlagEncrypted != 0 || e.method == methodAES:
		how := "encrypted (traditional PKWARE encryption)"
		if e.method == methodAES {
			how = fmt.Sprintf("encrypted with WinZip AES (inner method %d, %s)", e.aesMethod, methodName(e.aesMethod))
		}
		zm.err = fmt.Errorf("ova: zip: entry %d %q is %s, which is not supported: %w", e.index, name, how, ErrZipUnsupported)
		z.warnf(e.localOff, name, "listed, but reads fail: the entry is %s", how)
	case e.method == methodStored && e.csize != e.usize:
		zm.err = fmt.Errorf("ova: zip: entry %d %q is stored, but its directory records %d bytes stored for %d bytes of data: %w", e.index, name, e.csize, e.usize, ErrZipCorrupt)
		z.warnf(e.localOff, name, "listed, but reads fail: stored with %d bytes for %d bytes of data", e.csize, e.usize)
	case e.method == methodStored:
	case e.method == methodDeflate:
		zm.inflate = &lazyInflate{z: zm, usize: e.usize, span: z.opt.Span}
	default:
		zm.err = fmt.Errorf("ova: zip: entry %d %q is compressed with method %d (%s), which is not supported: %w", e.index, name, e.method, methodName(e.method), ErrZipUnsupported)
		z.warnf(e.localOff, name, "listed, but reads fail: compression method %d (%s) is not supported, only stored and deflate", e.method, methodName(e.method))
	}
	if zm.plain() {
		m.src = z.r
		if e.usize > 0 {
			m.one[0] = fragment{len: e.usize, phys: s.dataOff}
			m.frags = m.one[:]
		}
		return m
	}
	m.src = zm
	if e.usize > 0 {
		m.one[0] = fragment{len: e.usize}
		m.frags = m.one[:]
	}
	return m
}

// linkTarget reads a symlink entry's data, its target, which must be
// short, stored or deflated, and match its CRC-32.
func (z *zipIndex) linkTarget(s zipSpan) (string, error) {
	e := s.e
	if e.usize > 4095 || e.csize > 64<<10 || e.flags&zipFlagEncrypted != 0 {
		return "", errors.New("target too long or encrypted")
	}
	raw := make([]byte, e.csize)
	if err := readFull(z.r, raw, s.dataOff); err != nil {
		return "", err
	}
	var b []byte
	switch e.method {
	case methodStored:
		b = raw
	case methodDeflate:
		var err error
		b, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), 4096))
		if err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("method %d", e.method)
	}
	if int64(len(b)) != e.usize || crc32.ChecksumIEEE(b) != e.crc {
		return "", errors.New("target does not match its CRC-32 or size")
	}
	return string(b), nil
}
