package readat

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// scripted answers every ReadAt with n bytes of 'x' and err.
type scripted struct {
	n   int
	err error
}

func (s scripted) ReadAt(p []byte, off int64) (int, error) {
	return copy(p, bytes.Repeat([]byte("x"), s.n)), s.err
}

func TestFull(t *testing.T) {
	disk := errors.New("disk on fire")
	for _, tc := range []struct {
		name  string
		r     io.ReaderAt
		short bool  // a *ShortError
		want  error // else exactly this (nil: success)
	}{
		{name: "all", r: scripted{8, nil}},
		{name: "all with EOF", r: scripted{8, io.EOF}},
		{name: "all with an error", r: scripted{8, disk}},
		{name: "short with EOF", r: scripted{3, io.EOF}, short: true},
		{name: "short without an error", r: scripted{3, nil}, short: true},
		{name: "short with an error", r: scripted{3, disk}, want: disk},
		{name: "past the end", r: bytes.NewReader(make([]byte, 4)), short: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Full(tc.r, make([]byte, 8), 0)
			if !tc.short {
				if err != tc.want {
					t.Fatalf("Full: %v, want %v", err, tc.want)
				}
				return
			}
			var se *ShortError
			if !errors.As(err, &se) || !errors.Is(err, io.ErrUnexpectedEOF) || se.Want != 8 {
				t.Fatalf("Full: %#v, want a short read of 8 bytes that is io.ErrUnexpectedEOF", err)
			}
		})
	}
	if err := Full(bytes.NewReader([]byte("abcdef")), make([]byte, 3), 2); err != nil {
		t.Fatalf("Full inside the source: %v", err)
	}
	err := Full(scripted{3, io.EOF}, make([]byte, 8), 0)
	if got, want := err.Error(), "unexpected EOF: got 3 of 8 bytes"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
}
