package gzindex

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// The persisted form, version 1 (gzip) or 2:
//
//	"ovfgzix" 0x00, version byte
//	version 2 only: kind byte (0: gzip members, 1: one raw deflate stream)
//	uvarint compressed size, decompressed size, span, members, end of members
//	32-byte stream identity
//	uvarint warning count, then each: uvarint length, bytes
//	uvarint checkpoint count, then each:
//	    flags byte (1: mid-block, with a header offset; 2: window deflated)
//	    uvarint bit offset minus the previous one (the first: absolute)
//	    uvarint decompressed offset minus the previous one
//	    mid-block only: uvarint bit offset minus the header's bit offset
//	    uvarint window length, then: deflated: uvarint length, bytes; raw: bytes
//	SHA-256 of everything above
//
// Version 3, the split form (MarshalSplit), differs in three places: an
// 8-byte little-endian length of the head follows the version byte, then
// the kind byte; each checkpoint carries a 4-byte little-endian CRC-32C
// (Castagnoli) of its window instead of the window; and the SHA-256
// covers the magic, version, length and head only, and is followed by
// the windows, in checkpoint order, with nothing after them.
//
// A gzip index is still written as version 1, byte for byte what earlier
// releases wrote and read; only a raw deflate index needs version 2, so an
// older reader refuses it (by its version) instead of serving a raw stream
// as gzip.
//
// Deltas keep offsets to a few bytes; windows stay as Build compressed
// them. The trailing digest catches damage; the structural checks in
// Unmarshal catch foreign or crafted encodings that carry a valid digest.
const (
	encMagic   = "ovfgzix\x00"
	encVersion = 1
	// encVersionKind adds the kind byte.
	encVersionKind = 2
	// encVersionSplit is the split form (split.go).
	encVersionSplit = 3
	kindGzip        = 0
	kindRaw         = 1

	flagMid    = 1
	flagPacked = 2

	maxWarnings   = 64
	maxWarningLen = 4096
	// minCheckpointBytes is the smallest encoding of a checkpoint (flags,
	// two offsets, an empty window), which bounds the count an encoding of
	// a given length can claim.
	minCheckpointBytes = 4
)

// MarshalBinary encodes the index: compact, versioned, with a digest over
// the whole encoding and the identity of the stream it indexes.
func (ix *Index) MarshalBinary() ([]byte, error) { return ix.encode(false) }

// MarshalSplit encodes the index in the split form (version 3): the
// index's head, which is everything but the windows, under a SHA-256,
// then the windows, each with a CRC-32C in the head. [Load] reads back
// the head alone, so that loading a saved index costs what its head does
// (11 KB for a 1.2 GB archive) rather than its windows (19 MB).
func (ix *Index) MarshalSplit() ([]byte, error) { return ix.encode(true) }

func (ix *Index) encode(split bool) ([]byte, error) {
	n := len(encMagic) + 10 + 5*binary.MaxVarintLen64 + len(ix.ident) + 2*sha256.Size
	for _, w := range ix.warnings {
		n += binary.MaxVarintLen64 + len(w)
	}
	for i := range ix.cps {
		n += 1 + 5*binary.MaxVarintLen64 + 4 + ix.cps[i].stored()
	}
	b := make([]byte, 0, n)
	b = append(b, encMagic...)
	switch {
	case split:
		kind := byte(kindGzip)
		if ix.raw {
			kind = kindRaw
		}
		b = append(b, encVersionSplit, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	case ix.raw:
		b = append(b, encVersionKind, kindRaw)
	default:
		b = append(b, encVersion)
	}
	for _, v := range []int64{ix.compressed, ix.size, ix.span, ix.members, ix.end} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	b = append(b, ix.ident[:]...)
	b = binary.AppendUvarint(b, uint64(len(ix.warnings)))
	for _, w := range ix.warnings {
		b = binary.AppendUvarint(b, uint64(len(w)))
		b = append(b, w...)
	}
	b = binary.AppendUvarint(b, uint64(len(ix.cps)))
	var windows []byte
	var in, out int64
	var buf []byte
	for i := range ix.cps {
		cp := &ix.cps[i]
		var flags byte
		if cp.hdr >= 0 {
			flags |= flagMid
		}
		if cp.packed {
			flags |= flagPacked
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(cp.in-in))
		b = binary.AppendUvarint(b, uint64(cp.out-out))
		in, out = cp.in, cp.out
		if cp.hdr >= 0 {
			b = binary.AppendUvarint(b, uint64(cp.in-cp.hdr))
		}
		b = binary.AppendUvarint(b, uint64(cp.wlen))
		if cp.packed {
			b = binary.AppendUvarint(b, uint64(cp.stored()))
		}
		if buf == nil && cp.inSource() {
			buf = make([]byte, windowSize)
		}
		w, err := ix.window(cp, buf)
		if err != nil {
			return nil, err
		}
		if split {
			b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(w, castagnoli))
			windows = append(windows, w...)
		} else {
			b = append(b, w...)
		}
	}
	if split {
		binary.LittleEndian.PutUint64(b[splitHeadAt-8:], uint64(len(b)-splitHeadAt))
	}
	sum := sha256.Sum256(b)
	return append(append(b, sum[:]...), windows...), nil
}

// decoder reads the encoding; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrIndex, fmt.Sprintf(format, args...))
	}
}

// int reads a uvarint that must fit an int64.
func (d *decoder) int(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > math.MaxInt64 {
		d.fail("bad %s", what)
		return 0
	}
	d.b = d.b[n:]
	return int64(v)
}

func (d *decoder) bytes(n int64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > int64(len(d.b)) {
		d.fail("%s of %d bytes overruns the encoding", what, n)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte(what string) byte {
	v := d.bytes(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

// Unmarshal decodes an index made by MarshalBinary or MarshalSplit. It
// rejects, with an error wrapping ErrIndex, anything damaged, of another
// version, or not self-consistent, and allocates no more than the
// encoding's length allows. The Index keeps no reference to b.
func Unmarshal(b []byte) (*Index, error) {
	if len(b) > len(encMagic) && string(b[:len(encMagic)]) == encMagic && b[len(encMagic)] == encVersionSplit {
		return Load(bytes.NewReader(bytes.Clone(b)), int64(len(b)))
	}
	if len(b) < len(encMagic)+1+sha256.Size || string(b[:len(encMagic)]) != encMagic {
		return nil, fmt.Errorf("%w: not a gzip index", ErrIndex)
	}
	v := b[len(encMagic)]
	if v != encVersion && v != encVersionKind {
		return nil, fmt.Errorf("%w: version %d, this package reads versions %d to %d", ErrIndex, v, encVersion, encVersionSplit)
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return nil, fmt.Errorf("%w: digest mismatch: the encoding is damaged", ErrIndex)
	}
	d := &decoder{b: body[len(encMagic)+1:]}
	ix := &Index{}
	if v == encVersionKind {
		ix.raw = d.kind()
	}
	if err := ix.decodeHead(d, false); err != nil {
		return nil, err
	}
	return ix, nil
}

// kind reads the kind byte and reports whether it says raw.
func (d *decoder) kind() bool {
	switch k := d.byte("kind"); k {
	case kindGzip:
	case kindRaw:
		return true
	default:
		d.fail("unknown kind %d", k)
	}
	return false
}

// decodeHead reads what follows the version (and kind) byte: the fields,
// warnings and checkpoints. Windows follow each checkpoint inline, copied
// into one allocation, or, split, are a CRC-32C here and bytes elsewhere,
// at offsets this assigns.
func (ix *Index) decodeHead(d *decoder, split bool) error {
	ix.compressed = d.int("compressed size")
	ix.size = d.int("decompressed size")
	ix.span = d.int("span")
	ix.members = d.int("member count")
	ix.end = d.int("end of members")
	copy(ix.ident[:], d.bytes(int64(len(ix.ident)), "stream identity"))

	nw := d.int("warning count")
	if nw > maxWarnings {
		d.fail("%d warnings", nw)
	}
	for i := int64(0); i < nw && d.err == nil; i++ {
		l := d.int("warning length")
		if l > maxWarningLen {
			d.fail("warning of %d bytes", l)
		}
		ix.warnings = append(ix.warnings, string(d.bytes(l, "warning")))
	}

	ncp := d.int("checkpoint count")
	if d.err == nil && (ncp < 1 || ncp > MaxMaxCheckpoints || ncp > int64(len(d.b))/minCheckpointBytes) {
		d.fail("%d checkpoints in %d bytes", ncp, len(d.b))
	}
	if d.err != nil {
		return d.err
	}
	// All windows go into one allocation, no larger than the encoding.
	var store []byte
	if !split {
		store = make([]byte, 0, len(d.b))
	}
	ix.cps = make([]checkpoint, 0, ncp)
	var in, out, woff int64
	for i := int64(0); i < ncp && d.err == nil; i++ {
		flags := d.byte("checkpoint flags")
		if flags&^(flagMid|flagPacked) != 0 {
			d.fail("checkpoint %d has unknown flags %#x", i, flags)
		}
		cp := checkpoint{hdr: -1}
		din, dout := d.int("checkpoint offset"), d.int("checkpoint offset")
		if din > math.MaxInt64-in || dout > math.MaxInt64-out || (i > 0 && din == 0) {
			d.fail("checkpoint %d offsets", i)
		}
		cp.in, cp.out = in+din, out+dout
		in, out = cp.in, cp.out
		if flags&flagMid != 0 {
			back := d.int("block header offset")
			if back < 1 || back > cp.in {
				d.fail("checkpoint %d block header offset", i)
			}
			cp.hdr = cp.in - back
		}
		wlen := d.int("window length")
		if wlen > windowSize || wlen > cp.out {
			d.fail("checkpoint %d window of %d bytes", i, wlen)
		}
		cp.wlen = int(wlen)
		n := wlen
		if flags&flagPacked != 0 {
			cp.packed = true
			n = d.int("packed window length")
			if n < 1 || n >= wlen {
				d.fail("checkpoint %d packed window of %d bytes", i, n)
			}
		}
		if split {
			if sum := d.bytes(4, "window checksum"); sum != nil {
				cp.wsum = binary.LittleEndian.Uint32(sum)
			}
			cp.woff, cp.wn = woff, int(n)
			woff += n
		} else if w := d.bytes(n, "window"); len(w) > 0 {
			store = append(store, w...)
			cp.window = store[len(store)-len(w) : len(store) : len(store)]
		}
		ix.cps = append(ix.cps, cp)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d unexpected bytes after the checkpoints", len(d.b))
	}
	if d.err != nil {
		return d.err
	}
	ix.windows = woff
	return ix.check()
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler with Unmarshal.
// An Index is shared by Readers as immutable, so call it only on a new
// Index, never on one in use.
func (ix *Index) UnmarshalBinary(b []byte) error {
	v, err := Unmarshal(b)
	if err != nil {
		return err
	}
	*ix = *v
	return nil
}

// check verifies what Build guarantees and the Reader relies on.
func (ix *Index) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrIndex, fmt.Sprintf(format, args...))
	}
	switch {
	case ix.compressed > math.MaxInt64/8:
		return bad("compressed size %d", ix.compressed)
	case ix.span < MinSpan:
		return bad("span %d", ix.span)
	case ix.members < 1:
		return bad("no members")
	case ix.raw && ix.members != 1:
		return bad("a raw deflate stream with %d members", ix.members)
	case ix.end > ix.compressed:
		return bad("members end at %d, past the stream's %d bytes", ix.end, ix.compressed)
	case ix.cps[0].out != 0:
		return bad("the first checkpoint is not at the start")
	}
	var f *inflater
	for i := range ix.cps {
		cp := &ix.cps[i]
		if cp.in >= ix.end*8 || cp.out > ix.size {
			return bad("checkpoint %d (bit %d, byte %d) is outside the stream", i, cp.in, cp.out)
		}
		// A stored window's length was checked as it was read; a
		// packed one must inflate to its length. A split index's
		// windows are checked when a Reader first reads them.
		if !cp.packed || cp.inSource() {
			continue
		}
		if f == nil {
			f = newInflater(windowSize+1+outSlack, 4096)
		}
		if err := unpackWindow(f, cp, cp.window); err != nil {
			return err
		}
	}
	return nil
}
