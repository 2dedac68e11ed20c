package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// dirResolver resolves extent names inside dir, as the archive layer
// resolves them among sibling members. Test-only: the package itself
// never opens host paths.
func dirResolver(t testing.TB, dir string) func(string) (io.ReaderAt, int64, error) {
	return func(name string) (io.ReaderAt, int64, error) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, 0, err
		}
		t.Cleanup(func() { f.Close() })
		st, err := f.Stat()
		if err != nil {
			return nil, 0, err
		}
		return f, st.Size(), nil
	}
}

// openFile opens path with Name set to its base name.
func openFile(t testing.TB, path string, resolve func(string) (io.ReaderAt, int64, error)) (*Image, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Open(f, st.Size(), Options{Name: filepath.Base(path), Resolve: resolve})
}

const chunk = 1 << 20

// compareStats reports how much of an image a comparison covered.
type compareStats struct {
	bytes, skipped int64 // compared byte for byte; proven zero on both sides without reading
	reads          int   // random, straddling and concurrent reads
}

// compareImage checks im against a raw oracle file: the whole image in
// 1 MiB chunks, seeded random reads, reads straddling grain boundaries and
// the last partial grain, and concurrent readers. grain is the image's
// unit size in bytes.
func compareImage(t *testing.T, im *Image, oracle string, grain int64) compareStats {
	t.Helper()
	f, err := os.Open(oracle)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	size := im.Size()
	if size != st.Size() {
		t.Fatalf("Size() = %d, qemu-img says %d", size, st.Size())
	}
	var cs compareStats

	// The whole image. On large images, chunks that both sides prove to
	// be zero without data (our map has no data, the oracle file has a
	// hole there) are not read; everything else is.
	skipHoles := size > 256<<20
	got, want := make([]byte, chunk), make([]byte, chunk)
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		if skipHoles && noData(t, im, off, n) && oracleHole(f, off, n) {
			cs.skipped += n
			continue
		}
		compareAt(t, im, f, got[:n], want[:n], off)
		cs.bytes += n
	}

	// Seeded random reads, at most 3 grains long. (Under -race, inflating
	// is slow enough that the read counts here set the test's duration.)
	rng := rand.New(rand.NewSource(size))
	for range 32 {
		off := rng.Int63n(size)
		n := 1 + rng.Int63n(3*grain)
		compareSpan(t, im, f, off, n)
		cs.reads++
	}

	// Reads straddling unit boundaries: the first few grains, a few
	// random ones, and the last (possibly partial) grain and the end.
	var edges []int64
	for k := int64(1); k <= 2; k++ {
		edges = append(edges, k*grain)
	}
	for range 4 {
		edges = append(edges, (1+rng.Int63n(max(1, size/grain)))*grain)
	}
	last := (size - 1) / grain * grain
	edges = append(edges, last, size)
	for _, e := range edges {
		for _, d := range []int64{1, 4096} {
			if e-d >= 0 && e-d < size {
				compareSpan(t, im, f, e-d, 2*d)
				cs.reads++
			}
		}
	}
	compareSpan(t, im, f, last, size-last) // the last grain alone
	cs.reads++
	// A read running past the end returns what exists and io.EOF.
	p := make([]byte, 1000)
	n, err := blockmap.ReadAt(im, p, size-10)
	if n != 10 || err != io.EOF {
		t.Fatalf("read past the end: n=%d err=%v, want 10 and EOF", n, err)
	}

	// Concurrent readers on one Image.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			got := make([]byte, 2*grain)
			want := make([]byte, 2*grain)
			for range 8 {
				off := r.Int63n(size)
				n := min(1+r.Int63n(2*grain), size-off)
				if _, err := blockmap.ReadAt(im, got[:n], off); err != nil {
					errs <- fmt.Errorf("concurrent read at %d+%d: %w", off, n, err)
					return
				}
				if _, err := f.ReadAt(want[:n], off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got[:n], want[:n]) {
					errs <- fmt.Errorf("concurrent read at %d+%d differs from qemu-img", off, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cs.reads += 8 * 8
	return cs
}

func compareSpan(t *testing.T, im *Image, f *os.File, off, n int64) {
	t.Helper()
	n = min(n, im.Size()-off)
	compareAt(t, im, f, make([]byte, n), make([]byte, n), off)
}

func compareAt(t *testing.T, im *Image, f *os.File, got, want []byte, off int64) {
	t.Helper()
	if n, err := blockmap.ReadAt(im, got, off); err != nil || n != len(got) {
		t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", len(got), off, n, err)
	}
	if _, err := f.ReadAt(want, off); err != nil {
		t.Fatalf("oracle read at %d: %v", off, err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("byte %d differs from qemu-img: got %#x, want %#x (read of %d at %d)", off+int64(i), got[i], want[i], len(got), off)
	}
}

// noData reports whether the map has no data in [off, off+n).
func noData(t *testing.T, m blockmap.Mapper, off, n int64) bool {
	t.Helper()
	for pos := off; pos < off+n; {
		r, err := m.Map(pos)
		if err != nil {
			t.Fatalf("Map(%d): %v", pos, err)
		}
		if err := r.Check(pos, m.Size()); err != nil {
			t.Fatalf("Map(%d): %v", pos, err)
		}
		if r.Kind.HasData() {
			return false
		}
		pos = r.End()
	}
	return true
}

// oracleHole reports whether the oracle file has no data in [off, off+n)
// according to SEEK_DATA.
func oracleHole(f *os.File, off, n int64) bool {
	const seekData = 3
	next, err := syscall.Seek(int(f.Fd()), off, seekData)
	if errors.Is(err, syscall.ENXIO) {
		return true
	}
	return err == nil && next >= off+n
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
