package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

func TestSlots(t *testing.T) {
	for _, tc := range []struct {
		off  int64
		n    int
		want int
	}{
		{0, 4096, 1}, {0, 4097, 2}, {512, 4096, 2}, {4095, 2, 2}, {8192, 0, 0},
		{0, maxRead, 253}, {512, maxRead, 254},
	} {
		if got := slots(tc.off, tc.n); got != tc.want {
			t.Errorf("slots(%d, %d) = %d, want %d", tc.off, tc.n, got, tc.want)
		}
	}
}

// A reply must never be cut short by the pipe: the largest read, from an
// unaligned offset (a VHD block after its sector bitmap), must still fit,
// and pieces that cannot fit must be refused so the caller copies instead.
func TestSpliceResultFits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	os.WriteFile(path, data, 0o644)
	f, _ := os.Open(path)
	defer f.Close()
	fd := f.Fd()

	res, ok := spliceResult([]FilePiece{{FD: fd, Off: 512, Len: maxRead}}, maxRead, nopLog(), "f")
	if !ok {
		t.Fatal("the largest unaligned read must be spliced")
	}
	if res.Size() != maxRead {
		t.Fatalf("size %d", res.Size())
	}
	res.Done()

	// Many small unaligned pieces need more slots than a pipe has.
	var pieces []FilePiece
	total := 0
	for i := range 200 {
		pieces = append(pieces, FilePiece{FD: fd, Off: int64(i*8192 + 100), Len: 4096})
		total += 4096
	}
	if _, ok := spliceResult(pieces, total, nopLog(), "f"); ok {
		t.Error("pieces needing 400 pipe slots were accepted")
	}

	// A few pieces are gathered in a pipe, in order.
	pieces = []FilePiece{{FD: fd, Off: 100, Len: 5000}, {FD: fd, Off: 70000, Len: 3}, {FD: fd, Off: 0, Len: 16}}
	res, ok = spliceResult(pieces, 5019, nopLog(), "f")
	if !ok {
		t.Fatal("three small pieces refused")
	}
	got, st := res.Bytes(make([]byte, 5019))
	res.Done()
	want := append(append(append([]byte{}, data[100:5100]...), data[70000:70003]...), data[:16]...)
	if st != fuse.OK || !bytes.Equal(got, want) {
		t.Errorf("gathered %d bytes, status %v; contents differ", len(got), st)
	}
}
