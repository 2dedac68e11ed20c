package ova

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func warned(a *Archive, substr string) bool {
	for _, w := range a.Warnings() {
		if strings.Contains(w.String(), substr) {
			return true
		}
	}
	return false
}

func mustOpen(t *testing.T, s *sparseBytes) *Archive {
	t.Helper()
	a, err := OpenZip(s, s.size, ZipOptions{})
	if err != nil {
		t.Fatalf("OpenZip: %v", err)
	}
	return a
}

// TestZip64Offsets places a member past 4 GiB in a mostly empty file, so
// that its offset, and the directory's, need zip64 records.
func TestZip64Offsets(t *testing.T) {
	var c craft
	small := []byte("small descriptor")
	big := bytes.Repeat([]byte("disk"), 1<<14)
	c.add(newCentry("a.ovf", small))
	c.skip(5 << 30)
	e := newCentry("disk.vmdk", big)
	e.zip64 = true
	at := c.add(e)
	s := c.finish(true, -1)
	a := mustOpen(t, s)
	if len(a.Warnings()) != 0 {
		t.Fatalf("warnings: %v", a.Warnings())
	}
	m, ok := a.Lookup("disk.vmdk")
	if !ok || m.HeaderOffset != at || m.HeaderOffset < 5<<30 {
		t.Fatalf("disk.vmdk at %d, want %d", m.HeaderOffset, at)
	}
	if got := readAll(t, m); !bytes.Equal(got, big) {
		t.Fatal("disk.vmdk differs")
	}
	if _, phys, ok := m.Contiguous(); !ok || phys <= 5<<30 {
		t.Fatalf("Contiguous at %d, %v", phys, ok)
	}
	if err := m.Prepare(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if m, _ := a.Lookup("a.ovf"); !bytes.Equal(readAll(t, m), small) {
		t.Fatal("a.ovf differs")
	}
}

// TestZipHostileCounts has end records whose counts lie: they are
// warnings, and a count of 2^32 allocates nothing.
func TestZipHostileCounts(t *testing.T) {
	for _, tc := range []struct {
		zip64 bool
		count int64
	}{{false, 5}, {true, 1 << 32}, {true, 1<<63 - 1}, {false, 0}} {
		var c craft
		c.add(newCentry("a", []byte("x")))
		c.add(newCentry("b", []byte("y")))
		a := mustOpen(t, c.finish(tc.zip64, tc.count))
		if len(a.Files()) != 2 || !warned(a, "the central directory holds 2") {
			t.Fatalf("count %d: %d files, warnings %v", tc.count, len(a.Files()), a.Warnings())
		}
	}
	// A directory claiming more bytes than the file has is refused.
	var c craft
	c.add(newCentry("a", []byte("x")))
	b := c.finish(false, -1).bytes()
	binary.LittleEndian.PutUint32(b[len(b)-10:], 1<<31)
	if _, err := openZipBytes(t, b); !errors.Is(err, ErrZipCorrupt) {
		t.Fatalf("huge directory size: %v", err)
	}
}

// TestZipOverlap drops entries whose bytes overlap an earlier one's: the
// same local header under two names, and data that runs over the next
// entry.
func TestZipOverlap(t *testing.T) {
	var c craft
	at := c.add(newCentry("a.vmdk", bytes.Repeat([]byte{1}, 1000)))
	dup := newCentry("a.vmdk", bytes.Repeat([]byte{1}, 1000))
	dup.at = at
	c.add(dup)
	c.add(newCentry("ok.txt", []byte("fine")))
	a := mustOpen(t, c.finish(false, -1))
	if len(a.Files()) != 2 || !warned(a, "overlap") {
		t.Fatalf("files %d, warnings %v", len(a.Files()), a.Warnings())
	}

	// Data that runs into the next entry's local header.
	c = craft{}
	first := c.add(newCentry("x", bytes.Repeat([]byte{2}, 100)))
	c.add(newCentry("y", []byte("second")))
	s := c.finish(false, -1)
	b := s.bytes()
	// Make x claim 120 bytes, in both headers, so only the overlap is wrong.
	binary.LittleEndian.PutUint32(b[first+18:], 120)
	binary.LittleEndian.PutUint32(b[first+22:], 120)
	cd := bytes.Index(b, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(b[cd+20:], 120)
	binary.LittleEndian.PutUint32(b[cd+24:], 120)
	a, err := openZipBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Lookup("y"); ok || !warned(a, "overlap") {
		t.Fatalf("y kept; warnings %v", a.Warnings())
	}
}

// TestZipHostileEntries covers entries that are left out or listed but
// unreadable, and names that must be cleaned.
func TestZipHostileEntries(t *testing.T) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	raw := func(h *zip.FileHeader, body []byte) {
		h.CompressedSize64, h.UncompressedSize64 = uint64(len(body)), uint64(len(body))
		h.CRC32 = crc32IEEE(body)
		fw, err := w.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(body)
	}
	for _, n := range []string{"../evil.txt", "/abs/x.txt", "a/../../b", "dup.txt", "dup.txt", "ok/./y.txt", "\\\\server\\share.txt"} {
		fw, _ := w.Create(n)
		fw.Write([]byte(n))
	}
	raw(&zip.FileHeader{Name: "bzip2.bin", Method: 12}, []byte("BZh9 not really"))
	raw(&zip.FileHeader{Name: "crypt.bin", Method: zip.Store, Flags: 1}, []byte("secret"))
	raw(&zip.FileHeader{Name: "\x81ber.txt", Method: zip.Store, CreatorVersion: 0<<8 | 20, NonUTF8: true}, []byte("cp437"))
	raw(&zip.FileHeader{Name: "dos\\path.txt", Method: zip.Store, CreatorVersion: 0<<8 | 20}, []byte("dos"))
	raw(&zip.FileHeader{Name: "ünïcode.txt", Method: zip.Store}, []byte("utf8"))
	raw(&zip.FileHeader{Name: "unix-\xff.txt", Method: zip.Store, CreatorVersion: 3<<8 | 20, NonUTF8: true}, []byte("bytes"))
	w.Close()
	a, err := openZipBytes(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, data string }{
		{"abs/x.txt", "/abs/x.txt"}, {"dup.txt", "dup.txt"}, {"ok/y.txt", "ok/./y.txt"},
		{"über.txt", "cp437"}, {"dos/path.txt", "dos"}, {"ünïcode.txt", "utf8"}, {"unix-\xff.txt", "bytes"},
		{"\\\\server\\share.txt", "\\\\server\\share.txt"},
	} {
		m, ok := a.Lookup(tc.name)
		if !ok {
			t.Fatalf("%q missing; members %v", tc.name, memberNames(a))
		}
		if got := readAll(t, m); string(got) != tc.data {
			t.Fatalf("%q reads %q", tc.name, got)
		}
	}
	for _, gone := range []string{"evil.txt", "b"} {
		if _, ok := a.Lookup(gone); ok {
			t.Fatalf("%q mounted", gone)
		}
	}
	for _, w := range []string{`"../evil.txt"`, `leading "/" removed`, "the last one wins", "code page 437", "backslashes", "bzip2", "encrypted"} {
		if !warned(a, w) {
			t.Errorf("no warning with %q: %v", w, a.Warnings())
		}
	}
	for _, n := range []string{"bzip2.bin", "crypt.bin"} {
		m, ok := a.Lookup(n)
		if !ok {
			t.Fatalf("%s not listed", n)
		}
		if _, err := m.ReadAt(make([]byte, 4), 0); !errors.Is(err, ErrZipUnsupported) {
			t.Fatalf("%s: read: %v", n, err)
		}
		if _, _, ok := m.Contiguous(); ok {
			t.Fatalf("%s is contiguous", n)
		}
		if err := m.Prepare(t.Context(), nil); !errors.Is(err, ErrZipUnsupported) {
			t.Fatalf("%s: Prepare: %v", n, err)
		}
	}
}

func memberNames(a *Archive) []string {
	var out []string
	for _, m := range a.Members() {
		out = append(out, m.Name)
	}
	return out
}

// TestZipLocalMismatch damages local headers so that they disagree with
// the central directory: those entries are left out, with a warning.
func TestZipLocalMismatch(t *testing.T) {
	body := []byte("some data here")
	mk := func() []byte {
		return goZip(t, goEntry{name: "first.txt", method: zip.Store, data: body, raw: true}, goEntry{name: "second.txt", method: zip.Store, data: body, raw: true})
	}
	for _, tc := range []struct {
		what  string
		patch func(b []byte)
	}{
		{"name", func(b []byte) { b[30] = 'F' }},
		{"method", func(b []byte) { b[8] = 8 }},
		{"size", func(b []byte) { b[18]++ }},
		{"CRC-32", func(b []byte) { b[14]++ }},
		{"signature", func(b []byte) { b[0] = 'X' }},
	} {
		b := mk()
		tc.patch(b)
		a, err := openZipBytes(t, b)
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if _, ok := a.Lookup("first.txt"); ok || !warned(a, "first.txt") {
			t.Fatalf("%s: first.txt kept, warnings %v", tc.what, a.Warnings())
		}
		if m, ok := a.Lookup("second.txt"); !ok || !bytes.Equal(readAll(t, m), body) {
			t.Fatalf("%s: second.txt lost", tc.what)
		}
	}
}

// TestZipTruncated cuts an archive at every length near its ends and at a
// few in between: never a panic, and an error or a usable archive.
func TestZipTruncated(t *testing.T) {
	b := goZip(t, goEntry{name: "a.txt", method: zip.Deflate, data: bytes.Repeat([]byte("abc"), 1000)}, goEntry{name: "b.txt", method: zip.Store, data: []byte("b")})
	for n := 0; n <= len(b); n++ {
		if n > 40 && n < len(b)-200 && n%97 != 0 {
			continue
		}
		a, err := OpenZip(bytes.NewReader(b[:n]), int64(n), ZipOptions{})
		if err != nil {
			if !errors.Is(err, ErrNotZip) && !errors.Is(err, ErrZipCorrupt) {
				t.Fatalf("%d bytes: %v", n, err)
			}
			continue
		}
		if n != len(b) {
			t.Fatalf("%d of %d bytes open", n, len(b))
		}
		_ = a
	}
	if _, err := OpenZip(bytes.NewReader(b[:len(b)-1]), int64(len(b)-1), ZipOptions{}); !errors.Is(err, ErrZipCorrupt) {
		t.Fatalf("a zip without its end record: %v, want ErrZipCorrupt", err)
	}
}

// TestZipPrefixAndTrailer serves a zip with a stub before it (as
// self-extractors have) and bytes after it.
func TestZipPrefixAndTrailer(t *testing.T) {
	z := goZip(t, goEntry{name: "a.txt", method: zip.Deflate, data: []byte("hello hello hello")})
	b := append(append([]byte("#!/bin/sh\nexit 0\n"), z...), "trailing"...)
	a, err := openZipBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := a.Lookup("a.txt")
	if !ok || string(readAll(t, m)) != "hello hello hello" || !warned(a, "precede") || !warned(a, "after the end") {
		t.Fatalf("a.txt %v, warnings %v", ok, a.Warnings())
	}
}

func TestIsZip(t *testing.T) {
	empty := goZip(t)
	for _, tc := range []struct {
		b    []byte
		want bool
	}{
		{goZip(t, goEntry{name: "a", method: zip.Store}), true},
		{empty, true},
		{[]byte("PK\x03\x04"), false},
		{make([]byte, 1024), false},
		{append([]byte("ustar"), make([]byte, 600)...), false},
	} {
		if got := IsZip(bytes.NewReader(tc.b), int64(len(tc.b))); got != tc.want {
			t.Fatalf("IsZip(%q...) = %v", tc.b[:min(8, len(tc.b))], got)
		}
	}
	a, err := openZipBytes(t, empty)
	if err != nil || len(a.Members()) != 1 {
		t.Fatalf("empty zip: %v", err)
	}
	if _, err := openZipBytes(t, make([]byte, 100)); !errors.Is(err, ErrNotZip) {
		t.Fatalf("zeros: %v", err)
	}
}

// TestCP437 checks the table against iconv's, byte by byte, where the
// host has iconv's CP437.
func TestCP437(t *testing.T) {
	for c := 0x20; c < 0x80; c++ {
		if got := decodeCP437([]byte{byte(c)}); got != string(rune(c)) {
			t.Fatalf("%#x = %q", c, got)
		}
	}
	if got := decodeCP437([]byte{0x80, 0x81, 0x9e, 0xe1, 0xe6, 0xfa, 0xff}); got != "Çü₧ßµ·\u00a0" {
		t.Fatalf("got %q", got)
	}
}

// FuzzOpenZip indexes arbitrary bytes as a zip and reads every member:
// never a panic or hang, errors only of the documented kinds, and stored
// members never reach outside the archive.
func FuzzOpenZip(f *testing.F) {
	f.Add(goZip(f, goEntry{name: "a.ovf", method: zip.Deflate, data: bytes.Repeat([]byte("ovf "), 300)}, goEntry{name: "d/b.mf", method: zip.Store, data: []byte("mf")}))
	f.Add(goZip(f, goEntry{name: "r", method: zip.Deflate, data: []byte("raw raw raw"), raw: true}))
	f.Add(goZip(f))
	var c craft
	e := newCentry("z64", []byte("zip64 data"))
	e.zip64 = true
	c.add(e)
	f.Add(c.finish(true, -1).bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		IsZip(bytes.NewReader(data), int64(len(data)))
		a, err := OpenZip(bytes.NewReader(data), int64(len(data)), ZipOptions{})
		if err != nil {
			if !errors.Is(err, ErrNotZip) && !errors.Is(err, ErrZipCorrupt) {
				t.Fatalf("OpenZip: %v", err)
			}
			return
		}
		for _, m := range a.Members() {
			for _, fr := range m.frags {
				if m.zip != nil && m.zip.plain() && (fr.phys < 0 || fr.phys+fr.len > int64(len(data))) {
					t.Fatalf("%q: fragment %+v outside the %d-byte archive", m.Name, fr, len(data))
				}
			}
			if m.Type != TypeFile {
				continue
			}
			buf := make([]byte, 512)
			for _, off := range []int64{0, m.Size / 2, m.Size - 1} {
				if off < 0 || m.Size > 1<<24 {
					continue
				}
				_, err := m.ReadAt(buf, off)
				if err != nil && err != io.EOF && !errors.Is(err, ErrZipCorrupt) && !errors.Is(err, ErrZipUnsupported) {
					t.Fatalf("%q: ReadAt(%d): %v", m.Name, off, err)
				}
			}
		}
	})
}
