package integrity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ovfmount/ovfmount/ova"
)

// countingReader counts the bytes read from the archive.
type countingReader struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// openCounted opens the OVA at path as openPkg does, through a reader
// that counts the bytes read from it.
func openCounted(t *testing.T, path string, opts Options) (*opened, *countingReader) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	cr := &countingReader{r: fh}
	a, err := ova.Open(cr, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return checkPkg(a, st, opts), cr
}

// verify starts f's verification and waits for it.
func verify(t *testing.T, f *File) {
	t.Helper()
	f.Start()
	f.Wait(context.Background())
	if f.Status() != StatusVerified {
		t.Fatalf("%s is %s", f.Member().Name, f.Status())
	}
}

// TestRandomReadReadsPieces: a random 4 KiB read of a verified file reads
// (and hashes) only the pieces it touches and leaves nothing in the
// recent-chunk cache, while a reader that goes on from there reads whole
// chunks.
func TestRandomReadReadsPieces(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", diskBytes: 8*ChunkSize + 999})
	o, cr := openCounted(t, path, Options{Mode: Lazy})
	f := o.file1(t, "disk1.vmdk")
	verify(t, f)
	buf := make([]byte, 4096)
	for _, off := range []int64{5*ChunkSize + 3*PieceSize + 100, 2*ChunkSize + 5*PieceSize - 2000, 7 * ChunkSize} {
		before := cr.n.Load()
		if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, disk[off:off+4096]) {
			t.Fatalf("random read at %d: %v, or wrong bytes", off, err)
		}
		if n := cr.n.Load() - before; n > 2*PieceSize {
			t.Errorf("a random 4 KiB read at %d read %d bytes of the archive, more than two pieces", off, n)
		}
		if c := int(off / ChunkSize); recent.entered(f, c) {
			t.Errorf("a random read left chunk %d in the recent-chunk cache", c)
		}
	}

	// A last piece, short: read whole, and no further.
	off := int64(len(disk)) - 100
	before := cr.n.Load()
	if _, err := f.ReadAt(buf[:100], off); err != nil || !bytes.Equal(buf[:100], disk[off:]) {
		t.Fatalf("a read of the file's end: %v", err)
	}
	if n := cr.n.Load() - before; n != int64(len(disk))%PieceSize {
		t.Errorf("a read of the short last piece read %d bytes", n)
	}

	// Sequential: the third read is the second in a row to move forward
	// (inside chunk 1), so it is served its whole chunk, which the fourth
	// then finds cached. One step forward is not enough: a disk decoder
	// reads a record in two.
	f.ReadAt(buf, 1*ChunkSize)
	f.ReadAt(buf, 1*ChunkSize+4096)
	before = cr.n.Load()
	for i, off := range []int64{ChunkSize + 8192, ChunkSize + 12288} {
		if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, disk[off:off+4096]) {
			t.Fatalf("sequential read at %d: %v, or wrong bytes", off, err)
		}
		if n := cr.n.Load() - before; n != ChunkSize {
			t.Errorf("after sequential read %d, %d bytes were read, want one whole chunk", i, n)
		}
	}
	// A read larger than randomReadMax is served in chunks too.
	big := make([]byte, randomReadMax+1)
	before = cr.n.Load()
	if _, err := f.ReadAt(big, 4*ChunkSize+10); err != nil || !bytes.Equal(big, disk[4*ChunkSize+10:4*ChunkSize+10+len(big)]) {
		t.Fatalf("a large read: %v", err)
	}
	if n := cr.n.Load() - before; n != ChunkSize {
		t.Errorf("a %d-byte read read %d bytes, want its chunk", len(big), n)
	}
}

// TestPieceDamage: a byte changed in the archive after verification (in
// place, its mtime put back) is caught by the next random read of its
// piece, which names the piece, while a random read of another piece of
// the same chunk, before, still succeeds, and so do reads of another
// verified file of the archive.
func TestPieceDamage(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256"})
	o, cr := openCounted(t, path, Options{Mode: Lazy})
	f, ovf := o.file1(t, "disk1.vmdk"), o.file1(t, "app.ovf")
	verify(t, f)
	verify(t, ovf)

	const damaged = piecesPerChunk + 8 // piece 40, in chunk 1
	at := int64(damaged)*PieceSize + 1234
	st, _ := os.Stat(path)
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := o.a.Lookup("disk1.vmdk")
	_, phys, _ := m.Contiguous()
	if _, err := w.WriteAt([]byte{^disk[at]}, phys+at); err != nil {
		t.Fatal(err)
	}
	w.Close()
	os.Chtimes(path, st.ModTime(), st.ModTime())

	// Reads in chunks 3 and then 1 do not continue each other: both are
	// random, and the second reads piece 41 alone, beside the damage.
	buf := make([]byte, 4096)
	for _, off := range []int64{3*ChunkSize + 100, int64(damaged+1) * PieceSize} {
		before := cr.n.Load()
		if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, disk[off:off+4096]) {
			t.Fatalf("a read at %d, of an intact piece: %v", off, err)
		}
		if n := cr.n.Load() - before; n > PieceSize {
			t.Fatalf("the read at %d was not served by its piece: %d bytes read", off, n)
		}
	}
	f.ReadAt(buf, 3*ChunkSize) // so that the next read does not continue this one
	_, err = f.ReadAt(buf, at-100)
	want := fmt.Sprintf("piece %d (bytes %d-%d)", damaged, damaged*PieceSize, (damaged+1)*PieceSize-1)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "its table from verification says") {
		t.Fatalf("the damaged piece: %v", err)
	}
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, ErrMismatch) || f.Status() != StatusMismatch {
		t.Errorf("after the mismatch, another read: %v, %s", err, f.Status())
	}
	var named bool
	o.mu.Lock()
	for _, e := range o.events {
		named = named || (e.Status == StatusMismatch && e.Piece == damaged && e.Algorithm == chunkAlgorithm && e.Expected != e.Actual)
	}
	o.mu.Unlock()
	if !named {
		t.Errorf("no mismatch event naming piece %d: %+v", damaged, o.events)
	}
	all := make([]byte, ovf.Size())
	if _, err := ovf.ReadAt(all, 0); err != nil || ovf.Status() != StatusVerified {
		t.Errorf("the descriptor, in the same archive: %v, %s", err, ovf.Status())
	}
}

// TestTableEncoding: a table round-trips; a file of the earlier format
// (OVFMCT02, a digest per 1 MiB chunk), or one whose piece count does not
// fit its size, is refused even with a valid checksum.
func TestTableEncoding(t *testing.T) {
	id := bytes.Repeat([]byte{7}, 32)
	size := int64(3*ChunkSize + 5)
	tab := &chunkTable{Name: "disk1.vmdk", Size: size, Algorithm: "SHA256", Digest: []byte{1, 2, 3},
		Pieces: make([]pieceDigest, pieceCount(size))}
	for i := range tab.Pieces {
		tab.Pieces[i] = sumPiece([]byte{byte(i)})
	}
	empty := &chunkTable{Name: "empty", Algorithm: "SHA1", Digest: []byte{9}, Pieces: []pieceDigest{}}
	tables := map[string]*chunkTable{tab.Name: tab, empty.Name: empty}
	got, err := decodeTables(encodeTables(tables, id), id)
	if err != nil || !reflect.DeepEqual(got, tables) {
		t.Fatalf("round trip: %v\n%+v", err, got)
	}
	if n := len(tab.Pieces); n != 3*piecesPerChunk+1 {
		t.Fatalf("%d pieces for %d bytes", n, size)
	}

	// resum rewrites an encoding's trailing SHA-256, as a writer of that
	// format would have.
	resum := func(b []byte) []byte {
		body := b[:len(b)-sha256.Size]
		s := sha256.Sum256(body)
		return append(bytes.Clone(body), s[:]...)
	}
	old := encodeTables(tables, id)
	copy(old, "OVFMCT02")
	if _, err := decodeTables(resum(old), id); err == nil {
		t.Error("an OVFMCT02 table file was accepted")
	}
	for _, n := range []int{len(tab.Pieces) - 1, len(tab.Pieces) + 1, 4} {
		bad := *tab
		bad.Pieces = make([]pieceDigest, n)
		if _, err := decodeTables(encodeTables(map[string]*chunkTable{"d": &bad}, id), id); err == nil {
			t.Errorf("a table of %d pieces for %d bytes was accepted", n, size)
		}
	}
}

// TestMixedReadersParallel has random 4 KiB readers (served by pieces) and
// sequential readers (served by chunks, checked ahead) race over a
// verified file: every byte must be right, and the file stays verified.
func TestMixedReadersParallel(t *testing.T) {
	f, disk, _, _ := verifiedPkg(t, 12*ChunkSize+4321)
	var wg sync.WaitGroup
	fail := func(format string, args ...any) { t.Errorf(format, args...) }
	for g := range 4 {
		wg.Add(2)
		go func() { // random
			defer wg.Done()
			rng := mrand.New(mrand.NewSource(int64(g)))
			buf := make([]byte, 4096)
			for range 150 {
				n := 1 + rng.Intn(len(buf))
				off := rng.Int63n(int64(len(disk)))
				k, err := f.ReadAt(buf[:n], off)
				if (err != nil && err != io.EOF) || !bytes.Equal(buf[:k], disk[off:min(off+int64(n), int64(len(disk)))]) {
					fail("random read of %d at %d: %d bytes, %v, or wrong bytes", n, off, k, err)
					return
				}
			}
		}()
		go func() { // sequential
			defer wg.Done()
			buf := make([]byte, 128<<10+g*1000)
			for off := int64(g) * 333333; off < int64(len(disk)); off += int64(len(buf)) {
				r, err := f.Route(context.Background(), buf[:min(int64(len(buf)), int64(len(disk))-off)], off, false)
				if err != nil {
					fail("sequential read at %d: %v", off, err)
					return
				}
				ok := bytes.Equal(bytes.Join(r.Bufs, nil), disk[off:off+int64(r.Len())])
				r.Release()
				if !ok {
					fail("sequential read at %d: wrong bytes", off)
					return
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, "check-ahead finished", func() bool { return f.ahead.inFlight.Load() == 0 })
	if f.Status() != StatusVerified {
		t.Errorf("status %s after reading an intact file", f.Status())
	}
}
