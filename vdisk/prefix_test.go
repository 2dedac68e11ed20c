package vdisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

var (
	imagesMu sync.Mutex
	images   [3][]byte // compressedImages, once per process
)

// compressedImages makes a streamOptimized VMDK and a zlib QCOW2 of a
// small disk of real files with qemu-img, and returns their bytes and the
// bytes qemu-img convert -O raw makes of them.
func compressedImages(t *testing.T) (vmdk, qcow, raw []byte) {
	t.Helper()
	testutil.RequireTool(t, "qemu-img")
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if images[2] != nil {
		return images[0], images[1], images[2]
	}
	defer func() { images = [3][]byte{vmdk, qcow, raw} }()
	disk := testutil.PartitionedDisk(t, 16<<20, 8<<20)
	dir := t.TempDir()
	v := testutil.Convert(t, dir, disk, "vmdk", "subformat=streamOptimized")
	q := filepath.Join(dir, "zlib.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-c", "-O", "qcow2", "-o", "compression_type=zlib", disk, q)
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	raw = read(testutil.RawOracle(t, dir, v, "vmdk"))
	if !bytes.Equal(read(testutil.RawOracle(t, dir, q, "qcow2")), raw) {
		t.Fatal("qemu-img decodes the two images differently")
	}
	return read(v), read(q), raw
}

func openWith(t *testing.T, src io.ReaderAt, size int64, c *Cache, onDamage func(error)) *image {
	t.Helper()
	im, err := Open(src, size, Options{Name: "disk.vmdk", Cache: c, OnDamage: onDamage})
	if err != nil {
		t.Fatal(err)
	}
	return im.(*image)
}

// randomReads reads n random ranges (some inside a unit, some across
// units) from several goroutines and compares them with want.
func randomReads(t *testing.T, im *image, want []byte, n int, seed int64) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed + int64(g)))
			buf := make([]byte, 200<<10)
			for range n {
				off := rng.Int63n(int64(len(want)))
				k := 1 + rng.Intn(16<<10)
				if rng.Intn(8) == 0 {
					k = 1 + rng.Intn(len(buf))
				}
				k = int(min(int64(k), int64(len(want))-off))
				got, err := im.ReadAt(buf[:k], off)
				if err != nil || got != k || !bytes.Equal(buf[:k], want[off:off+int64(k)]) {
					t.Errorf("ReadAt(%d bytes at %d) = %d, %v, or the bytes differ from qemu-img's", k, off, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Random reads of a proven VMDK and of a zlib QCOW2 match qemu-img, with
// the early exit (with four decode workers and with one; the background
// finish runs in the pauses between reads) and without it (unproven
// images).
func TestPrefixReadsMatchQemu(t *testing.T) {
	vmdk, qcow, raw := compressedImages(t)
	for _, tc := range []struct {
		name    string
		src     io.ReaderAt
		size    int
		workers int
		prefix  bool
	}{
		{"vmdk proven", proven{bytes.NewReader(vmdk)}, len(vmdk), 4, true},
		{"vmdk proven, one worker", proven{bytes.NewReader(vmdk)}, len(vmdk), 1, true},
		{"vmdk unproven", bytes.NewReader(vmdk), len(vmdk), 4, false},
		{"qcow2 proven", proven{bytes.NewReader(qcow)}, len(qcow), 4, true},
		{"qcow2 proven, one worker", proven{bytes.NewReader(qcow)}, len(qcow), 1, true},
		{"qcow2 unproven", bytes.NewReader(qcow), len(qcow), 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(4<<20, tc.workers) // small: units are evicted and come back
			defer c.Close()
			im := openWith(t, tc.src, int64(tc.size), c, func(err error) { t.Errorf("damaged: %v", err) })
			randomReads(t, im, raw, 400, 1)
			prefixes, finished := c.PrefixStats()
			t.Logf("%d prefix reads, %d units finished in the background", prefixes, finished)
			if (prefixes > 0) != tc.prefix {
				t.Errorf("%d prefix reads, want some: %v", prefixes, tc.prefix)
			}
			if im.Damaged() != nil {
				t.Errorf("Damaged() = %v", im.Damaged())
			}
		})
	}
}

// badAdler returns a copy of the VMDK with the Adler-32 of the grain
// holding virtual offset off flipped (the stream still inflates), and the
// grain's unit.
func badAdler(t *testing.T, vmdk []byte, off int64) ([]byte, blockmap.Unit) {
	t.Helper()
	im := openWith(t, bytes.NewReader(vmdk), int64(len(vmdk)), NewCache(0, 1), nil)
	r, err := im.mapRun(off)
	if err != nil || r.Kind != blockmap.Compressed {
		t.Fatalf("offset %d: %v, %v", off, r.Kind, err)
	}
	u := r.Unit
	size := int64(binary.LittleEndian.Uint32(vmdk[u.Phys+8:])) // marker: LBA, size
	end := u.Phys + 12 + size
	bad := bytes.Clone(vmdk)
	for i := end - 4; i < end; i++ {
		bad[i] ^= 0x5a
	}
	return bad, u
}

// firstGrain is the virtual offset of a compressed grain with data.
func firstGrain(t *testing.T, raw []byte) int64 {
	for off := int64(1 << 20); off < int64(len(raw)); off += 64 << 10 {
		if bytes.Count(raw[off:off+64<<10], []byte{0}) < 32<<10 {
			return off
		}
	}
	t.Fatal("no grain of data")
	return 0
}

// An unproven VMDK never serves a byte of a grain before its Adler-32:
// every read touching a grain with a wrong one fails.
func TestUnprovenBadAdler(t *testing.T) {
	vmdk, _, raw := compressedImages(t)
	g := firstGrain(t, raw)
	bad, _ := badAdler(t, vmdk, g)
	c := NewCache(0, 4)
	defer c.Close()
	im := openWith(t, bytes.NewReader(bad), int64(len(bad)), c, func(err error) { t.Errorf("damaged: %v", err) })
	for _, rd := range []struct{ off, n int64 }{{g, 4096}, {g + 60<<10, 4096}, {g, 64 << 10}, {g - 4096, 8192}, {g + 100, 1}} {
		buf := make([]byte, rd.n)
		n, err := im.ReadAt(buf, rd.off)
		if !errors.Is(err, ErrCorrupt) || n != 0 {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want 0, ErrCorrupt", rd.n, rd.off, n, err)
		}
	}
	if p, _ := c.PrefixStats(); p != 0 {
		t.Errorf("%d prefix reads of an unproven source", p)
	}
	// The rest of the disk reads; the image is not damaged.
	buf := make([]byte, 4096)
	if _, err := im.ReadAt(buf, g+64<<10); err != nil || !bytes.Equal(buf, raw[g+64<<10:][:4096]) {
		t.Errorf("next grain: %v", err)
	}
	if im.Damaged() != nil {
		t.Errorf("Damaged() = %v", im.Damaged())
	}
}

// A proven VMDK serves the head of a grain with a wrong Adler-32; the
// background finish finds it, and the image is damaged from then on.
func TestProvenBadAdlerDamages(t *testing.T) {
	vmdk, _, raw := compressedImages(t)
	g := firstGrain(t, raw)
	bad, u := badAdler(t, vmdk, g)
	for _, how := range []string{"background", "tail read"} {
		t.Run(how, func(t *testing.T) {
			workers := 4
			if how == "tail read" {
				workers = 2 // the finish may or may not get a slot: either way
			}
			c := NewCache(0, workers)
			defer c.Close()
			var calls atomic.Int32
			var msg atomic.Value
			im := openWith(t, proven{bytes.NewReader(bad)}, int64(len(bad)), c, func(err error) {
				msg.Store(err.Error())
				calls.Add(1)
			})
			buf := make([]byte, 4096)
			if n, err := im.ReadAt(buf, g); err != nil || n != 4096 || !bytes.Equal(buf, raw[g:g+4096]) {
				t.Fatalf("head read: %d, %v", n, err)
			}
			if p, _ := c.PrefixStats(); p != 1 {
				t.Fatalf("%d prefix reads, want 1", p)
			}
			if how == "tail read" {
				_, err := im.ReadAt(buf, g+60<<10)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("tail read: %v, want ErrCorrupt", err)
				}
			}
			// Damaged is set before OnDamage is called: wait for both.
			for deadline := time.Now().Add(5 * time.Second); (im.Damaged() == nil || calls.Load() == 0) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			err := im.Damaged()
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Damaged() = %v", err)
			}
			for _, want := range []string{"disk.vmdk", fmt.Sprintf("grain %d ", g/(64<<10)),
				fmt.Sprintf("at offset %d:", u.Phys), fmt.Sprintf("virtual offset %d ", u.Off)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Damaged() = %q, does not say %q", err, want)
				}
			}
			// Every later read fails, even of other grains and of zeros.
			for _, off := range []int64{0, g, g + 64<<10, int64(len(raw)) - 4096} {
				if n, rerr := im.ReadAt(buf, off); n != 0 || !errors.Is(rerr, ErrCorrupt) {
					t.Errorf("ReadAt(%d) = %d, %v after damage", off, n, rerr)
				}
			}
			if _, ok := im.Segments(0, 4096); ok {
				t.Error("Segments served a damaged image")
			}
			if calls.Load() != 1 || msg.Load() != err.Error() {
				t.Errorf("OnDamage called %d times, with %v", calls.Load(), msg.Load())
			}
		})
	}
}

// After a prefix read and its background finish, the unit is cached: a
// re-read of any part of it is a hit, without a decode.
func TestPrefixFinishCaches(t *testing.T) {
	vmdk, _, raw := compressedImages(t)
	g := firstGrain(t, raw)
	c := NewCache(0, 4)
	defer c.Close()
	im := openWith(t, proven{bytes.NewReader(vmdk)}, int64(len(vmdk)), c, nil)
	buf := make([]byte, 4096)
	if _, err := im.ReadAt(buf, g+8192); err != nil || !bytes.Equal(buf, raw[g+8192:][:4096]) {
		t.Fatalf("first read: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, f := c.PrefixStats(); f == 1 {
			break
		}
	}
	if p, f := c.PrefixStats(); p != 1 || f != 1 {
		t.Fatalf("PrefixStats = %d, %d; want 1, 1", p, f)
	}
	hits, _, decodes := c.Stats()
	for _, off := range []int64{g, g + 60<<10, g + 8192} {
		im.ra = readAhead{} // no read-ahead decodes: each read is a jump
		if _, err := im.ReadAt(buf, off); err != nil || !bytes.Equal(buf, raw[off:][:4096]) {
			t.Fatalf("re-read at %d: %v", off, err)
		}
	}
	if h, _, d := c.Stats(); d != decodes || h != hits+3 {
		t.Errorf("re-reads: %d decodes, %d hits; want none and 3", d-decodes, h-hits)
	}
	if p, _ := c.PrefixStats(); p != 1 {
		t.Errorf("%d prefix reads, want 1", p)
	}
	im.servedMu.Lock()
	left := len(im.served)
	im.servedMu.Unlock()
	if left != 0 {
		t.Errorf("%d units still awaiting their check", left)
	}
}
