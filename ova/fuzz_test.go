package ova

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen indexes arbitrary bytes and reads every member. Whatever the
// input, Open must not panic or hang, and no member may claim bytes outside
// the archive.
func FuzzOpen(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("Open failed with %v, want ErrFormat", err)
			}
			return
		}
		for _, m := range a.Members() {
			checkFragments(t, m, int64(len(data)))
			if m.Type != TypeFile {
				continue
			}
			buf := make([]byte, 4096)
			for _, off := range []int64{0, m.Size / 2, m.Size - 1, m.avail - 1} {
				if off < 0 {
					continue
				}
				_, err := m.ReadAt(buf, off)
				if err != nil && err != io.EOF && !errors.Is(err, ErrTruncated) {
					t.Fatalf("%q: ReadAt(%d): %v", m.Name, off, err)
				}
			}
		}
	})
}

// checkFragments fails t if a fragment of m that holds present bytes
// reaches outside an archive of size bytes: what Member.ReadAt trusts.
func checkFragments(t *testing.T, m *Member, size int64) {
	t.Helper()
	for _, fr := range m.frags {
		if fr.phys < 0 || fr.len < 0 || (fr.off < m.avail && fr.phys+min(fr.len, m.avail-fr.off) > size) {
			t.Fatalf("%q: fragment %+v outside the %d-byte archive", m.Name, fr, size)
		}
	}
}
