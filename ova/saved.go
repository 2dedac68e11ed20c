package ova

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrSavedIndex is what OpenSaved fails with when a saved index is
// damaged, of another version, or of another archive size: the caller
// scans the archive again.
var ErrSavedIndex = errors.New("ova: saved archive index unusable")

// savedMagic starts a saved index; the last byte is its version.
const savedMagic = "OVFMTI\x00\x01"

// OpenRecorded is Open, and also returns a record of the scan that
// OpenSaved replays into the same index without reading a header. It is
// worth keeping where reading headers is dear: in a compressed archive,
// every header is a decode from a checkpoint.
func OpenRecorded(r io.ReaderAt, size int64) (*Archive, []byte, error) {
	t := newTree(r)
	var rec recorder
	s := &scanner{r: r, size: size, emit: func(e *entry) {
		rec.entry(e)
		t.add(e)
	}}
	if err := s.scan(); err != nil {
		return nil, nil, err
	}
	return newArchive(size, t.members(), append(s.warn, t.warn...)), rec.finish(size, s.warn), nil
}

// OpenSaved rebuilds the index of the tar archive of size bytes that r
// reads from a record OpenRecorded made of the same bytes. It reads
// nothing from r. A record that is damaged, or was made of an archive of
// another size, fails with ErrSavedIndex; the record is trusted to be of
// these bytes otherwise, so the caller keys it by the archive's identity.
// Whatever the record holds, no member reaches outside [0, size).
func OpenSaved(r io.ReaderAt, size int64, saved []byte) (*Archive, error) {
	d, err := newReplay(saved)
	if err != nil {
		return nil, err
	}
	if got := d.int(); got != size {
		return nil, fmt.Errorf("%w: made of an archive of %d bytes, not %d", ErrSavedIndex, got, size)
	}
	t := newTree(r)
	n := d.count(8)
	for i := int64(0); i < n && d.err == nil; i++ {
		e := d.entry(size)
		if d.err == nil {
			t.add(&e)
		}
	}
	var warns []Warning
	nw := d.count(3)
	for i := int64(0); i < nw && d.err == nil; i++ {
		warns = append(warns, Warning{Offset: d.int(), Name: d.str(), Msg: d.str()})
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the end", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return newArchive(size, t.members(), append(warns, t.warn...)), nil
}

// recorder encodes the entries a scan emits, as they come (the scanner
// reuses its entry).
type recorder struct {
	body []byte
	n    int64
}

func (r *recorder) int(v int64)  { r.body = binary.AppendVarint(r.body, v) }
func (r *recorder) str(s string) { r.int(int64(len(s))); r.body = append(r.body, s...) }
func (r *recorder) entry(e *entry) {
	r.n++
	r.int(e.hdrOff)
	r.str(e.rawName)
	r.int(int64(e.typ))
	r.int(e.mode)
	r.int(int64(e.uid))
	r.int(int64(e.gid))
	r.int(e.mtime.Unix())
	r.int(int64(e.mtime.Nanosecond()))
	r.int(e.size)
	r.str(e.linkname)
	r.int(int64(len(e.frags)))
	for _, f := range e.frags {
		r.int(f.off)
		r.int(f.len)
		r.int(f.phys)
	}
	r.int(e.avail)
}

// finish is the record: magic, archive size, entries, the scanner's
// warnings, and a SHA-256 of all that.
func (r *recorder) finish(size int64, warns []Warning) []byte {
	out := recorder{body: []byte(savedMagic)}
	out.int(size)
	out.int(r.n)
	out.body = append(out.body, r.body...)
	out.int(int64(len(warns)))
	for _, w := range warns {
		out.int(w.Offset)
		out.str(w.Name)
		out.str(w.Msg)
	}
	sum := sha256.Sum256(out.body)
	return append(out.body, sum[:]...)
}

// replay decodes a record, bounding every count and length by the bytes
// left, so that a hostile record allocates no more than its own size.
type replay struct {
	b   []byte
	err error
}

func newReplay(saved []byte) (*replay, error) {
	if len(saved) < len(savedMagic)+sha256.Size || !bytes.HasPrefix(saved, []byte(savedMagic)) {
		return nil, fmt.Errorf("%w: not a saved index of this version", ErrSavedIndex)
	}
	body := saved[:len(saved)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], saved[len(body):]) {
		return nil, fmt.Errorf("%w: digest mismatch", ErrSavedIndex)
	}
	return &replay{b: body[len(savedMagic):]}, nil
}

func (d *replay) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrSavedIndex, fmt.Sprintf(format, args...))
	}
	d.b = nil
}

func (d *replay) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items that take at least min bytes each.
func (d *replay) count(min int64) int64 {
	n := d.int()
	if n < 0 || n > int64(len(d.b))/min+1 {
		d.fail("a count of %d in %d bytes", n, len(d.b))
		return 0
	}
	return n
}

func (d *replay) str() string {
	n := d.int()
	if n < 0 || n > int64(len(d.b)) {
		d.fail("a string of %d bytes in %d", n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *replay) entry(size int64) entry {
	e := entry{hdrOff: d.int(), rawName: d.str()}
	typ := d.int()
	e.typ, e.mode = byte(typ), d.int()
	e.uid, e.gid = int(d.int()), int(d.int())
	sec := d.int()
	e.mtime = time.Unix(sec, d.int())
	e.size, e.linkname = d.int(), d.str()
	nf := d.count(3)
	var end int64
	for i := int64(0); i < nf && d.err == nil; i++ {
		f := fragment{off: d.int(), len: d.int(), phys: d.int()}
		if f.off < end || f.len < 0 || f.off > e.size-f.len || f.phys < 0 {
			d.fail("entry %q: fragment %d outside the member", e.rawName, i)
		}
		end = f.off + f.len
		e.frags = append(e.frags, f)
	}
	e.avail = d.int()
	// What Member.ReadAt trusts: the bytes present (a truncated member's
	// first avail) are stored inside the archive, as a scan finds them.
	for i, f := range e.frags {
		if f.off < e.avail && f.phys > size-min(f.len, e.avail-f.off) {
			d.fail("entry %q: fragment %d outside the archive", e.rawName, i)
		}
	}
	if typ < 0 || typ > 255 || e.size < 0 || e.avail < 0 || e.avail > e.size || e.hdrOff < 0 || e.hdrOff >= size {
		d.fail("entry %q: type %d, size %d, %d bytes present, header at %d", e.rawName, typ, e.size, e.avail, e.hdrOff)
	}
	return e
}
