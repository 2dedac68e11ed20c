package ntfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// The hostile tests damage one structure of a real volume at a time (the
// offsets are found through the reader's own map of the volume, which
// the undamaged image has been compared with ntfs-3g for) and check that
// the reader reports ErrCorrupt, promptly, for what the damage reaches
// and still reads the rest.

// damaged is a copy of the hostile image in memory, and the reader over
// the undamaged copy, to find structures with.
type damaged struct {
	t    *testing.T
	b    []byte
	orig *FS
}

// pristine is the undamaged hostile image and the reader over it, made
// once: the tests copy it.
var pristine struct {
	b    []byte
	orig *FS
}

func newDamaged(t *testing.T) *damaged {
	if pristine.b == nil {
		b, err := os.ReadFile(hostileImage(t))
		must(t, err)
		orig, err := Open(bytes.NewReader(b), int64(len(b)))
		must(t, err)
		pristine.b, pristine.orig = b, orig
	}
	return &damaged{t: t, b: bytes.Clone(pristine.b), orig: pristine.orig}
}

// open opens the damaged bytes with a fresh reader.
func (d *damaged) open() (*FS, error) {
	return Open(bytes.NewReader(d.b), int64(len(d.b)))
}

func (d *damaged) mustOpen() *FS {
	d.t.Helper()
	fsys, err := d.open()
	if err != nil {
		d.t.Fatalf("opening the damaged volume: %v", err)
	}
	return fsys
}

// poke writes v at volume offset off, refusing the two bytes of each
// sector that a fixup protects (changing them would be a fixup error,
// not the damage meant).
func (d *damaged) poke(off int64, v []byte) {
	d.t.Helper()
	for i := range v {
		if o := (off + int64(i)) % 512; o >= 510 {
			d.t.Fatalf("poke at %d touches a fixup position", off)
		}
	}
	copy(d.b[off:], v)
}

// streamAt maps offset off of stream s to the volume.
func (d *damaged) streamAt(s *stream, off int64) int64 {
	d.t.Helper()
	shift := d.orig.g.clusterShift
	i := s.findRun(off >> shift)
	if i < 0 || s.runs[i].lcn < 0 {
		d.t.Fatalf("stream offset %d is not allocated", off)
	}
	r := s.runs[i]
	return r.lcn<<shift + off - r.vcn<<shift
}

// record returns the volume offset of MFT record num.
func (d *damaged) record(num uint64) int64 {
	return d.streamAt(d.orig.mft, int64(num)*d.orig.g.recordSize)
}

// attr returns the volume offset of the first attribute of type typ in
// MFT record num.
func (d *damaged) attr(num uint64, typ uint32) int64 {
	d.t.Helper()
	at := d.record(num)
	rec := bytes.Clone(d.b[at : at+d.orig.g.recordSize])
	must(d.t, applyFixup(rec, "FILE"))
	for off := int(binary.LittleEndian.Uint16(rec[0x14:])); off+8 <= len(rec); {
		tp := binary.LittleEndian.Uint32(rec[off:])
		if tp == typ {
			return at + int64(off)
		}
		if tp == atEnd {
			break
		}
		off += int(binary.LittleEndian.Uint32(rec[off+4:]))
	}
	d.t.Fatalf("record %d has no attribute %#x", num, typ)
	return 0
}

// value returns the volume offset of a resident attribute's value.
func (d *damaged) value(num uint64, typ uint32) int64 {
	a := d.attr(num, typ)
	return a + int64(binary.LittleEndian.Uint16(d.b[a+20:]))
}

func (d *damaged) ino(p string) uint64 {
	d.t.Helper()
	return lookupPath(d.t, d.orig, p).Ino
}

func wantCorrupt(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, guestfs.ErrCorrupt) {
		t.Errorf("%s: %v, want ErrCorrupt", what, err)
	}
}

// prompt fails the test if fn runs for more than 20 s.
func prompt(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still running after 20 s", what)
	}
}

func TestHostileFixup(t *testing.T) {
	d := newDamaged(t)
	ino := d.ino(hostileComp)
	d.b[d.record(ino)+510] ^= 0xff
	fsys := d.mustOpen()
	_, err := fsys.Stat(ino)
	wantCorrupt(t, "stat of a record with a torn sector", err)
	if boundedWalk(fsys, 5000) < hostileDeepN {
		t.Error("the rest of the volume is not readable")
	}

	d = newDamaged(t)
	d.b[d.record(fileRoot)+1022] ^= 0xff
	_, err = d.open()
	wantCorrupt(t, "open with a torn root record", err)

	d = newDamaged(t)
	d.b[d.record(fileMFT)+510] ^= 0xff
	_, err = d.open()
	wantCorrupt(t, "open with a torn $MFT record", err)
}

func TestHostileRunlist(t *testing.T) {
	for _, p := range []string{hostileComp, hostileDeep} {
		d := newDamaged(t)
		ino := d.ino(p)
		typ := uint32(atData)
		if p == hostileDeep {
			typ = atIndexAlloc
		}
		a := d.attr(ino, typ)
		m := a + int64(binary.LittleEndian.Uint16(d.b[a+32:]))
		h := d.b[m]
		// The first run's cluster becomes the largest the field holds.
		off := bytes.Repeat([]byte{0xff}, int(h>>4))
		off[len(off)-1] = 0x7f
		d.poke(m+1+int64(h&0x0f), off)
		fsys := d.mustOpen()
		_, err := fsys.Stat(ino)
		wantCorrupt(t, p+": a run past the volume", err)
		if _, err := fsys.Lookup(fsys.Root(), "links"); err != nil {
			t.Errorf("%s: the root is unreadable: %v", p, err)
		}
	}
}

func TestHostileAttributeList(t *testing.T) {
	d := newDamaged(t)
	ino := d.ino(hostileLinks)
	// The list, resident or not: where each of its bytes is on the volume.
	at := d.record(ino)
	rec, err := parseRecord(bytes.Clone(d.b[at:at+d.orig.g.recordSize]), ino)
	must(t, err)
	var where func(off int64) int64
	var n int64
	for i := range rec.attrs {
		a := &rec.attrs[i]
		if a.typ != atAttributeList {
			continue
		}
		if a.nonRes {
			s, err := d.orig.buildStream(extents{a})
			must(t, err)
			n = s.size
			where = func(off int64) int64 { return d.streamAt(s, off) }
		} else {
			v := d.value(ino, atAttributeList)
			n = int64(len(a.value))
			where = func(off int64) int64 { return v + off }
		}
	}
	if where == nil {
		t.Fatal("no attribute list")
	}
	found := false
	for off := int64(0); off < n; off += int64(binary.LittleEndian.Uint16(d.b[where(off)+4:])) {
		e := where(off)
		if ref := binary.LittleEndian.Uint64(d.b[e+16:]) & refMask; ref != ino {
			// An entry naming the root directory's record: another
			// file's attributes, or a way back into this list's own.
			copy(d.b[e+16:], binary.LittleEndian.AppendUint64(nil, fileRoot))
			found = true
			break
		}
	}
	if !found {
		t.Fatal("the attribute list names no extension record")
	}
	fsys := d.mustOpen()
	prompt(t, "stat", func() { _, err = fsys.Stat(ino) })
	wantCorrupt(t, "an attribute list naming another file's record", err)
}

func TestHostileIndexLoop(t *testing.T) {
	d := newDamaged(t)
	ino := d.ino(hostileDeep)
	n, err := d.orig.node(ino)
	must(t, err)
	ix, err := d.orig.openIndex(n)
	must(t, err)
	root, err := parseEntry(ix.root, 0)
	must(t, err)
	if root.child < 0 {
		t.Fatal("the deep directory's root has no sub-node")
	}
	inner, err := ix.block(root.child)
	must(t, err)
	first, err := parseEntry(inner, 0)
	must(t, err)
	if first.child < 0 {
		t.Fatal("the deep directory has only two levels")
	}
	// The inner block's first entry points back to the inner block.
	at := d.streamAt(n.indexAlloc, root.child<<ix.vcnShift)
	entries := at + 24 + int64(binary.LittleEndian.Uint32(d.b[at+24:]))
	d.poke(entries+int64(first.size)-8, binary.LittleEndian.AppendUint64(nil, uint64(root.child)))

	fsys := d.mustOpen()
	prompt(t, "readdir", func() {
		err = fsys.ReadDir(ino, func(guestfs.DirEntry) error { return nil })
	})
	wantCorrupt(t, "readdir of an index that loops", err)
	prompt(t, "lookups", func() {
		for i := 0; i < hostileDeepN; i += 97 {
			fsys.Lookup(ino, fmt.Sprintf("%04d-%s", i, strings.Repeat("n", 100)))
		}
	})
}

func TestHostileCompressed(t *testing.T) {
	d := newDamaged(t)
	ino := d.ino(hostileComp)
	n, err := d.orig.node(ino)
	must(t, err)
	if !n.data.compressed() {
		t.Fatal("the compressed file is not")
	}
	// The first unit starts with a chunk whose first token refers back
	// before the chunk.
	d.poke(d.streamAt(n.data, 0), []byte{0x02, 0xb0, 0x01, 0x00, 0x00})
	fsys := d.mustOpen()
	f, err := fsys.Open(ino)
	must(t, err)
	_, err = f.ReadAt(make([]byte, 100), 0)
	wantCorrupt(t, "a chunk referring before its start", err)
	// The next units still read.
	unit := int64(16) << fsys.g.clusterShift
	if _, err := f.ReadAt(make([]byte, 100), unit); err != nil {
		t.Errorf("the second unit: %v", err)
	}
}

// TestLZNT1 decodes chunks written by hand from the format's definition
// (MS-XCA 2.5), and refuses damaged ones.
func TestLZNT1(t *testing.T) {
	stored := bytes.Repeat([]byte("0123456789abcdef"), 256)
	for _, c := range []struct {
		name    string
		dst     int
		src     []byte
		want    string // before the zero padding
		corrupt bool
	}{
		{"literals", 4096, []byte{0x03, 0xb0, 0x00, 'a', 'b', 'c'}, "abc", false},
		{"back-reference", 4096, []byte{0x05, 0xb0, 0x08, 'a', 'b', 'c', 0x03, 0x20}, "abcabcabc", false},
		{"stored chunk", 4096, append([]byte{0xff, 0x3f}, stored...), string(stored), false},
		{"two chunks, the first short", 8192, []byte{0x03, 0xb0, 0x00, 'a', 'b', 'c', 0x03, 0xb0, 0x00, 'x', 'y', 'z'}, "abc" + string(make([]byte, 4093)) + "xyz", false},
		{"end mark", 4096, []byte{0x03, 0xb0, 0x00, 'a', 'b', 'c', 0, 0, 0x03, 0xb0, 0x00, 'x', 'y', 'z'}, "abc", false},
		{"reference before the chunk", 4096, []byte{0x04, 0xb0, 0x02, 'a', 0x20, 0x00}, "", true},
		{"reference at the start", 4096, []byte{0x02, 0xb0, 0x01, 0x00, 0x00}, "", true},
		{"length past the output", 8, []byte{0x05, 0xb0, 0x08, 'a', 'b', 'c', 0x0f, 0x20}, "", true},
		{"chunk past the input", 4096, []byte{0x40, 0xb0, 0x00, 'a'}, "", true},
		{"token cut short", 4096, []byte{0x02, 0xb0, 0x01, 0x00}, "", true},
		{"stored chunk past the output", 100, append([]byte{0xff, 0x3f}, stored...), "", true},
	} {
		dst := bytes.Repeat([]byte{0xee}, c.dst)
		err := lznt1Decompress(dst, c.src)
		if c.corrupt {
			wantCorrupt(t, c.name, err)
			continue
		}
		want := append([]byte(c.want), make([]byte, c.dst-len(c.want))...)
		if err != nil || !bytes.Equal(dst, want) {
			t.Errorf("%s: %v, %q", c.name, err, bytes.TrimRight(dst, "\x00"))
		}
	}
}

func TestHostileDirtyAndEncrypted(t *testing.T) {
	testutil.RequireTool(t, "ntfsinfo")
	d := newDamaged(t)
	flags := d.value(fileVolume, atVolumeInfo) + 10
	d.b[flags] |= 0x01
	// And in the $MFTMirr's copy of record 3, which ntfsinfo checks.
	mirr, err := d.orig.node(1)
	must(t, err)
	d.b[d.streamAt(mirr.data, flags-d.record(fileMFT))] |= 0x01
	ino := d.ino(hostileComp)
	si := d.value(ino, atStandardInfo)
	binary.LittleEndian.PutUint32(d.b[si+32:], binary.LittleEndian.Uint32(d.b[si+32:])|faEncrypted)
	// ntfsinfo confirms the damage is the volume's dirty flag.
	img := t.TempDir() + "/dirty.img"
	must(t, os.WriteFile(img, d.b, 0o644))
	if out := string(command(t, "ntfsinfo", "-f", "-m", img)); !strings.Contains(out, "Volume Flags: 0x0001") {
		t.Fatalf("ntfsinfo does not see the dirty flag:\n%s", out)
	}
	fsys := d.mustOpen()
	warned := false
	for _, w := range fsys.Info().Warnings {
		warned = warned || strings.Contains(w, "dirty")
	}
	if !warned {
		t.Errorf("no warning of a dirty volume: %v", fsys.Info().Warnings)
	}
	a, err := fsys.Stat(ino)
	if err != nil || a.Flags&guestfs.FlagEncrypted == 0 {
		t.Errorf("stat of an encrypted file: %v, flags %v", err, a.Flags)
	}
	if _, err := fsys.Open(ino); !errors.Is(err, guestfs.ErrUnsupported) {
		t.Errorf("open of an encrypted file: %v, want ErrUnsupported", err)
	}
}

func TestHostileMisc(t *testing.T) {
	d := newDamaged(t)
	fsys := d.mustOpen()
	if _, err := fsys.Stat(1 << 40); !errors.Is(err, guestfs.ErrNotExist) {
		t.Errorf("stat of a record past the MFT: %v", err)
	}
	n, err := fsys.node(d.ino(hostileLinks))
	must(t, err)
	// An extension record of the file of many names.
	var ext uint64
	for num := uint64(fileFirstUser); num < fsys.mftRecords && ext == 0; num++ {
		if r, err := fsys.readRecord(num); err == nil && r.base == n.num {
			ext = num
		}
	}
	if _, err := fsys.Stat(ext); ext == 0 || !errors.Is(err, guestfs.ErrCorrupt) {
		t.Errorf("stat of extension record %d: %v", ext, err)
	}
	file, dir := d.ino(hostileComp), d.ino(hostileDeep)
	if _, err := fsys.Open(dir); !errors.Is(err, guestfs.ErrIsDir) {
		t.Errorf("open of a directory: %v", err)
	}
	if _, err := fsys.Readlink(file); !errors.Is(err, guestfs.ErrNotLink) {
		t.Errorf("readlink of a file: %v", err)
	}
	if err := fsys.ReadDir(file, func(guestfs.DirEntry) error { return nil }); !errors.Is(err, guestfs.ErrNotDir) {
		t.Errorf("readdir of a file: %v", err)
	}
	// A volume cut short opens with a warning and reads what is there.
	cut := d.b[:len(d.b)/2]
	short, err := Open(bytes.NewReader(cut), int64(len(cut)))
	if err != nil {
		t.Fatalf("open of a volume cut in half: %v", err)
	}
	if len(short.Info().Warnings) == 0 {
		t.Error("no warning of a volume cut in half")
	}
	prompt(t, "walk of a cut volume", func() { boundedWalk(short, 5000) })
}
