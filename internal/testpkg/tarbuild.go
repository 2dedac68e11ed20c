package testpkg

import (
	"archive/tar"
	"bytes"
	"os"
	"testing"
	"time"
)

// TarMember is one member of an archive WriteTar writes: a file, with
// what to change in its header (the format, pax records, a size larger
// than the data, which then becomes a hole), or raw header and data
// blocks spliced in as they are (a GNU sparse member, say).
type TarMember struct {
	File
	Tweak func(*tar.Header)
	Raw   []byte
}

// M is a plain member.
func M(f File) TarMember { return TarMember{File: f} }

// WriteTar writes the members, in order, as a tar archive at path, each
// with its own header as Tweak makes it. A header whose Size exceeds the
// data gets the rest as a hole of the file (no disk space, nothing
// written), so that tests can make members of any size: only the headers
// of such an archive are meant to be read.
func WriteTar(t testing.TB, path string, ms ...TarMember) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var off int64
	put := func(b []byte) {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		off += int64(len(b))
	}
	for _, m := range ms {
		if m.Raw != nil {
			put(m.Raw)
			continue
		}
		h := &tar.Header{Name: m.Name, Mode: 0o644, Size: int64(len(m.Data)), ModTime: time.Unix(1700000000, 0),
			Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if m.Tweak != nil {
			m.Tweak(h)
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if h.Size <= int64(len(m.Data)) {
			tw.Write(m.Data[:h.Size])
			if err := tw.Flush(); err != nil {
				t.Fatal(err)
			}
			put(buf.Bytes())
			continue
		}
		// The header only; the data is a hole, padded to a block.
		put(buf.Bytes())
		start := off
		put(m.Data)
		off = start + (h.Size+511)&^511
	}
	put(make([]byte, 1024))
}

// RawMembers returns the member blocks of a tar archive file, without its
// end-of-archive zeros, to splice into another with TarMember.Raw.
func RawMembers(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(b)
	for end >= 512 && bytes.Count(b[end-512:end], []byte{0}) == 512 {
		end -= 512
	}
	return b[:end]
}
