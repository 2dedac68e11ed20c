package ova

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// describeArchive is everything an index holds of an archive, contents
// included, for comparing two indexes of it.
func describeArchive(t *testing.T, a *Archive) string {
	t.Helper()
	var b bytes.Buffer
	for _, m := range a.Members() {
		fmt.Fprintf(&b, "%q %v %o %d %d %v %q %d %d %d %v\n", m.Name, m.Type, m.Mode, m.Size, m.ModTime.UnixNano(),
			m.ModTime.IsZero(), m.Linkname, m.UID, m.GID, m.HeaderOffset, m.frags)
		if m.Type == TypeFile {
			// The head, the middle and the tail: test members may be
			// sparse files of terabytes.
			for _, off := range []int64{0, m.Size / 2, max(m.Size-1<<16, 0)} {
				buf := make([]byte, min(m.Size, 1<<16))
				n, err := m.ReadAt(buf, off)
				fmt.Fprintf(&b, "  %d %d %x %v\n", off, n, sha256.Sum256(buf[:n]), err)
			}
		}
	}
	for _, w := range a.Warnings() {
		fmt.Fprintf(&b, "warning %s\n", w)
	}
	return b.String()
}

// TestSavedIndexReplays records the scan of every test archive and
// replays it: the same members, bytes and warnings as a scan, without a
// read of the archive.
func TestSavedIndexReplays(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.tar"))
	if len(paths) < 20 {
		t.Fatalf("only %d test archives", len(paths))
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			continue // not an archive at all: nothing to save
		}
		a, rec, err := OpenRecorded(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if describeArchive(t, a) != describeArchive(t, want) {
			t.Errorf("%s: OpenRecorded's index differs from Open's", p)
		}
		got, err := OpenSaved(failingReader{t}, int64(len(data)), rec)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// Read the contents from the archive, as a mount would.
		for _, m := range got.Members() {
			if m.src != nil {
				m.src = bytes.NewReader(data)
			}
		}
		if d1, d2 := describeArchive(t, got), describeArchive(t, want); d1 != d2 {
			t.Errorf("%s: replayed index differs:\n%s\nscanned:\n%s", p, d1, d2)
		}
		// Damage and another size are refused.
		bad := append([]byte{}, rec...)
		bad[len(bad)/2] ^= 1
		if _, err := OpenSaved(failingReader{t}, int64(len(data)), bad); !errors.Is(err, ErrSavedIndex) {
			t.Errorf("%s: a damaged record: %v", p, err)
		}
		if _, err := OpenSaved(failingReader{t}, int64(len(data))+512, rec); !errors.Is(err, ErrSavedIndex) {
			t.Errorf("%s: a record of another size: %v", p, err)
		}
	}
}

// failingReader fails the test on any read: a replay reads nothing.
type failingReader struct{ t *testing.T }

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	f.t.Errorf("a read at %d while replaying a saved index", off)
	return 0, io.ErrUnexpectedEOF
}

// FuzzOpenSaved replays arbitrary records (made whole with their digest):
// no panic, no member reaching outside the archive.
func FuzzOpenSaved(f *testing.F) {
	for _, p := range []string{"ustar.tar", "gnu-sparse.tar", "pax-sparse-1.0.tar", "hardlink.tar"} {
		data, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			continue
		}
		if _, rec, err := OpenRecorded(bytes.NewReader(data), int64(len(data))); err == nil {
			sizeLen := len(binary.AppendVarint(nil, int64(len(data))))
			f.Add(rec[len(savedMagic)+sizeLen : len(rec)-sha256.Size])
		}
	}
	const size = 1 << 20
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := append(binary.AppendVarint([]byte(savedMagic), size), body...)
		sum := sha256.Sum256(rec)
		a, err := OpenSaved(bytes.NewReader(make([]byte, size)), size, append(rec, sum[:]...))
		if err != nil {
			if !errors.Is(err, ErrSavedIndex) {
				t.Fatalf("OpenSaved failed with %v, want ErrSavedIndex", err)
			}
			return
		}
		for _, m := range a.Members() {
			checkFragments(t, m, size)
			if m.Type == TypeFile {
				m.ReadAt(make([]byte, 4096), max(m.Size/2, 0)) // bytes.Reader fails, never panics, out of range
			}
		}
	})
}
