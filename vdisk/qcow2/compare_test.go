package qcow2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// openImage opens the qcow2 file at path; the file is closed with the test.
func openImage(t testing.TB, path string) *Image {
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
	img, err := Open(f, st.Size(), Options{Name: filepath.Base(path)})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return img
}

// oracle is qemu's decoding of an image, read from the raw file that
// qemu-img convert -O raw wrote.
type oracle struct {
	f    *os.File
	size int64
}

func openOracle(t testing.TB, dir, img string) *oracle {
	t.Helper()
	path := testutil.RawOracle(t, dir, img, "qcow2")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return &oracle{f: f, size: st.Size()}
}

// hole reports whether the oracle file has no data in [off, off+n), by
// SEEK_DATA: the range then reads as zeros.
func (o *oracle) hole(t testing.TB, off, n int64) bool {
	const seekData = 3 // SEEK_DATA
	next, err := o.f.Seek(off, seekData)
	if errors.Is(err, syscall.ENXIO) {
		return true // no data from off to the end
	}
	if err != nil {
		t.Fatalf("oracle SEEK_DATA at %d: %v", off, err)
	}
	return next >= off+n
}

// compareRange reads [off, off+n) through the mapper and the oracle and
// fails at the first differing byte, naming the run that covers it.
func compareRange(t testing.TB, img *Image, o *oracle, off, n int64, got, want []byte) {
	t.Helper()
	got, want = got[:n], want[:n]
	if _, err := blockmap.ReadAt(img, got, off); err != nil && err != io.EOF {
		t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
	}
	if _, err := o.f.ReadAt(want, off); err != nil && err != io.EOF {
		t.Fatalf("oracle ReadAt(%d, %d): %v", off, n, err)
	}
	if !bytes.Equal(got, want) {
		i := int64(0)
		for got[i] == want[i] {
			i++
		}
		r, err := img.Map(off + i)
		t.Fatalf("byte %d differs from qemu: got %#02x, want %#02x (run %+v, err %v)", off+i, got[i], want[i], r, err)
	}
}

// compareWhole compares the whole virtual disk in 1 MiB chunks and
// returns the bytes compared. Decoded clusters are kept by Unit.ID, as the
// shared read path does, which both spares decoding a 2 MiB cluster once
// per chunk and checks that IDs never collide.
func compareWhole(t testing.TB, img *Image, o *oracle) int64 {
	t.Helper()
	if img.Size() != o.size {
		t.Fatalf("Size() = %d, qemu-img wrote %d bytes", img.Size(), o.size)
	}
	const chunk = 1 << 20
	m := &unitCache{Image: img, units: map[int64][]byte{}}
	got, want := make([]byte, chunk), make([]byte, chunk)
	for off := int64(0); off < img.Size(); off += chunk {
		n := min(chunk, img.Size()-off)
		if _, err := blockmap.ReadAt(m, got[:n], off); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		if o.hole(t, off, n) {
			// qemu-img left a hole: the oracle is zeros without reading
			// it (819 MiB of them for one fixture).
			clear(want[:n])
		} else if _, err := o.f.ReadAt(want[:n], off); err != nil && err != io.EOF {
			t.Fatalf("oracle ReadAt(%d, %d): %v", off, n, err)
		}
		if !bytes.Equal(got[:n], want[:n]) {
			// Re-read uncached to name the first differing byte.
			compareRange(t, img, o, off, n, got, want)
			t.Fatalf("chunk at %d differs from qemu only when decoded clusters are cached by Unit.ID", off)
		}
	}
	return img.Size()
}

// unitCache is a Mapper whose compressed runs decode through a cache keyed
// by Unit.ID, like the shared read path's.
type unitCache struct {
	*Image
	units map[int64][]byte
}

func (m *unitCache) Map(off int64) (blockmap.Run, error) {
	r, err := m.Image.Map(off)
	if err == nil && r.Kind == blockmap.Compressed {
		r.Unit.Dec = &cachedDecoder{m: m, dec: r.Unit.Dec}
	}
	return r, err
}

type cachedDecoder struct {
	m   *unitCache
	dec blockmap.Decoder
}

func (d *cachedDecoder) DecodeUnit(ctx context.Context, dst []byte, u blockmap.Unit) error {
	if b, ok := d.m.units[u.ID]; ok {
		copy(dst, b)
		return nil
	}
	if err := d.dec.DecodeUnit(ctx, dst, u); err != nil {
		return err
	}
	if len(d.m.units) >= 8 {
		clear(d.m.units)
	}
	d.m.units[u.ID] = bytes.Clone(dst)
	return nil
}

// compareRandom compares n reads at seeded random offsets and lengths.
func compareRandom(t testing.TB, img *Image, o *oracle, seed int64, n int, maxLen int64) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	got, want := make([]byte, maxLen), make([]byte, maxLen)
	for range n {
		off := rng.Int63n(img.Size())
		ln := min(1+rng.Int63n(maxLen), img.Size()-off)
		compareRange(t, img, o, off, ln, got, want)
	}
}

// compareBoundaries compares reads that straddle unit boundaries (about
// count of them, spread over the disk) and the last, possibly partial,
// unit.
func compareBoundaries(t testing.TB, img *Image, o *oracle, unit int64, count int) {
	t.Helper()
	const margin = 700
	got, want := make([]byte, 2*margin+unit), make([]byte, 2*margin+unit)
	units := (img.Size() + unit - 1) / unit
	step := max(1, units/int64(count))
	for k := int64(1); k < units; k += step {
		b := k * unit
		off := max(0, b-margin)
		compareRange(t, img, o, off, min(b+margin, img.Size())-off, got, want)
	}
	last := (units - 1) * unit
	off := max(0, last-margin)
	compareRange(t, img, o, off, img.Size()-off, got, want)
	compareRange(t, img, o, img.Size()-1, 1, got, want)
}

// compareConcurrent runs readers in parallel goroutines (for -race) over
// the shared L2 cache and decoder pools.
func compareConcurrent(t *testing.T, img *Image, o *oracle, readers, reads int, maxLen int64) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for g := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(1000 + g)))
			got, want := make([]byte, maxLen), make([]byte, maxLen)
			for range reads {
				off := rng.Int63n(img.Size())
				n := min(1+rng.Int63n(maxLen), img.Size()-off)
				if _, err := blockmap.ReadAt(img, got[:n], off); err != nil && err != io.EOF {
					errs <- fmt.Errorf("reader %d: ReadAt(%d, %d): %v", g, off, n, err)
					return
				}
				if _, err := o.f.ReadAt(want[:n], off); err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(got[:n], want[:n]) {
					errs <- fmt.Errorf("reader %d: ReadAt(%d, %d) differs from qemu", g, off, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// walkRuns maps the whole disk run by run, checks each run against the
// Mapper contract, and counts the runs and bytes of each kind.
func walkRuns(t testing.TB, img *Image) (runs, bytes map[blockmap.Kind]int64) {
	t.Helper()
	runs, bytes = map[blockmap.Kind]int64{}, map[blockmap.Kind]int64{}
	for pos := int64(0); pos < img.Size(); {
		r, err := img.Map(pos)
		if err != nil {
			t.Fatalf("Map(%d): %v", pos, err)
		}
		if err := r.Check(pos, img.Size()); err != nil {
			t.Fatalf("Map(%d) = %+v: %v", pos, r, err)
		}
		runs[r.Kind]++
		bytes[r.Kind] += r.End() - pos
		pos = r.End()
	}
	return runs, bytes
}

// qemuExtent is one element of qemu-img map --output=json.
type qemuExtent struct {
	Start  int64  `json:"start"`
	Length int64  `json:"length"`
	Data   bool   `json:"data"`
	Zero   bool   `json:"zero"`
	Offset *int64 `json:"offset"`
}

// compareQemuMap checks the mapping itself against qemu-img map: the same
// bytes hold data, and stored data sits at the same host offsets. It
// returns the extents qemu reported.
func compareQemuMap(t testing.TB, img *Image, path string) []qemuExtent {
	t.Helper()
	testutil.RequireTool(t, "qemu-img")
	out, err := exec.Command("qemu-img", "map", "-f", "qcow2", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img map %s: %v", path, err)
	}
	var ext []qemuExtent
	if err := json.Unmarshal(out, &ext); err != nil {
		t.Fatalf("qemu-img map output: %v", err)
	}
	var pos int64
	for _, e := range ext {
		if e.Start != pos {
			t.Fatalf("qemu-img map: extent at %d, expected %d", e.Start, pos)
		}
		for end := e.Start + e.Length; pos < end; {
			r, err := img.Map(pos)
			if err != nil {
				t.Fatalf("Map(%d): %v", pos, err)
			}
			if r.Kind.HasData() != e.Data {
				t.Fatalf("at %d: run %v, qemu-img map says data=%v (%+v)", pos, r.Kind, e.Data, e)
			}
			if r.Kind == blockmap.Stored {
				if e.Offset == nil || r.Phys+(pos-r.Off) != *e.Offset+(pos-e.Start) {
					t.Fatalf("at %d: stored at %d, qemu-img map says %+v", pos, r.Phys+(pos-r.Off), e)
				}
			}
			pos = min(r.End(), end)
		}
	}
	if pos != img.Size() {
		t.Fatalf("qemu-img map covers %d bytes, the image %d", pos, img.Size())
	}
	return ext
}
