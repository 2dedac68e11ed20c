package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/route"

	"github.com/hanwen/go-fuse/v2/fuse"
)

func TestReplySlots(t *testing.T) {
	for _, tc := range []struct{ size, want int }{
		{0, 2}, {4096, 4}, {120 << 10, 32}, {124 << 10, 64}, {maxRead, 256}, {1 << 20, 256},
	} {
		if got := replySlots(tc.size); got != tc.want {
			t.Errorf("replySlots(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

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

	res, ok := spliceResult([]route.Range{{FD: fd, Off: 512, Len: maxRead}}, maxRead, nopLog(), "f")
	if !ok {
		t.Fatal("the largest unaligned read must be spliced")
	}
	if res.Size() != maxRead {
		t.Fatalf("size %d", res.Size())
	}
	res.Done()

	// Many small unaligned pieces need more slots than a pipe has.
	var pieces []route.Range
	total := 0
	for i := range 200 {
		pieces = append(pieces, route.Range{FD: fd, Off: int64(i*8192 + 100), Len: 4096})
		total += 4096
	}
	if _, ok := spliceResult(pieces, total, nopLog(), "f"); ok {
		t.Error("pieces needing 400 pipe slots were accepted")
	}

	// A smaller read gets a smaller reply pipe: 120 KiB in four unaligned
	// pieces needs 34 buffers, and go-fuse's pipe for it holds only 32.
	pieces = pieces[:0]
	for i := range 4 {
		pieces = append(pieces, route.Range{FD: fd, Off: int64(i*65536 + 512), Len: 30 << 10})
	}
	if _, ok := spliceResult(pieces, 120<<10, nopLog(), "f"); ok {
		t.Error("a 120 KiB read needing 34 pipe slots was accepted for a 32-slot pipe")
	}

	// A small read in pieces needs a buffer per piece, more than its
	// four-page reply pipe holds.
	pieces = []route.Range{{FD: fd, Off: 100, Len: 5000}, {FD: fd, Off: 70000, Len: 3}, {FD: fd, Off: 0, Len: 16}}
	if _, ok := spliceResult(pieces, 5019, nopLog(), "f"); ok {
		t.Error("a 5019-byte read in three pieces was accepted for a four-slot pipe")
	}

	// A few pieces that fit are gathered in a pipe, in order.
	pieces = []route.Range{{FD: fd, Off: 100, Len: 40000}, {FD: fd, Off: 70000, Len: 3}, {FD: fd, Off: 0, Len: 25533}}
	res, ok = spliceResult(pieces, 65536, nopLog(), "f")
	if !ok {
		t.Fatal("three pieces of a 64 KiB read refused")
	}
	got, st := res.Bytes(make([]byte, 65536))
	res.Done()
	want := append(append(append([]byte{}, data[100:40100]...), data[70000:70003]...), data[:25533]...)
	if st != fuse.OK || !bytes.Equal(got, want) {
		t.Errorf("gathered %d bytes, status %v; contents differ", len(got), st)
	}
}
