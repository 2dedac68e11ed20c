package overlay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// TestModel runs random writes, zeroes, discards, reads and syncs against
// a byte-slice model, reopening the store now and then (after a Close, so
// nothing may be lost).
func TestModel(t *testing.T) {
	ctx := context.Background()
	defer func(v int64) { checkpointSlack = v }(checkpointSlack)
	for _, size := range []int64{1 << 20, 1<<20 + 1000} {
		// The second size also checkpoints at commits, every few KiB
		// of journal.
		if size%BlockSize != 0 {
			checkpointSlack = 2048
		}
		r := rand.New(rand.NewPCG(uint64(size), 7))
		dir := t.TempDir()
		base := &patternBase{size: size}
		model := base.bytes()
		s := openTest(t, dir, "k")
		d := openDiskT(t, s, "disk1.vmdk", base)
		for i := range 3000 {
			off := r.Int64N(size)
			n := min(r.Int64N(3*BlockSize)+1, size-off)
			if r.IntN(4) == 0 {
				off = off / BlockSize * BlockSize
				n = min(int64(r.IntN(8)+1)*BlockSize, size-off)
			}
			switch op := r.IntN(10); {
			case op < 5:
				p := randBytes(r, int(n))
				if err := d.WriteAt(ctx, p, off); err != nil {
					t.Fatalf("op %d: write: %v", i, err)
				}
				copy(model[off:], p)
			case op == 5:
				if err := d.WriteZeroes(ctx, off, n); err != nil {
					t.Fatal(err)
				}
				clear(model[off : off+n])
			case op == 6:
				if err := d.Discard(ctx, off, n); err != nil {
					t.Fatal(err)
				}
				clear(model[off : off+n])
			case op == 7:
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
			default:
				got := make([]byte, n)
				if err := d.ReadAt(ctx, got, off); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, model[off:off+n]) {
					t.Fatalf("op %d: read %d at %d differs from the model", i, n, off)
				}
			}
			if i%700 == 349 {
				// A crash's reopen, without Close: after a Sync nothing is lost.
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
				d.data.Close()
				d.jnl.Close()
				s.lock.Close()
				s = openTest(t, dir, "k")
				d = openDiskT(t, s, "disk1.vmdk", base)
				checkAll(t, d, model)
			}
			if i%700 == 699 {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = openTest(t, dir, "k")
				d = openDiskT(t, s, "disk1.vmdk", base)
				checkAll(t, d, model)
			}
		}
		checkAll(t, d, model)
		if !d.Modified() || d.Written() == 0 {
			t.Errorf("Modified %v, Written %d after writes", d.Modified(), d.Written())
		}
		if err := d.WriteAt(ctx, []byte{1}, size); !errors.Is(err, ErrPastEnd) {
			t.Errorf("a write past the end: %v, want ErrPastEnd", err)
		}
		if err := d.WriteAt(ctx, make([]byte, 2), size-1); !errors.Is(err, ErrPastEnd) {
			t.Errorf("a write across the end: %v, want ErrPastEnd", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSyncedSurvivesReopenWithoutClose drops a store without Close (as a
// crash would, in-process): synced writes are there, unsynced ones may
// be, and nothing else changed.
func TestSyncedSurvivesReopenWithoutClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := &patternBase{size: 64 * BlockSize}
	s := openTest(t, dir, "k")
	d := openDiskT(t, s, "d", base)
	want := base.bytes()
	for b := range uint64(32) {
		p := versionBlock(b, 1)
		if err := d.WriteAt(ctx, p, int64(b)*BlockSize); err != nil {
			t.Fatal(err)
		}
		copy(want[b*BlockSize:], p)
	}
	if err := d.Discard(ctx, 4*BlockSize, 4*BlockSize); err != nil {
		t.Fatal(err)
	}
	clear(want[4*BlockSize : 8*BlockSize])
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	for b := range uint64(40) {
		if err := d.WriteAt(ctx, versionBlock(b, 2), int64(b)*BlockSize); err != nil {
			t.Fatal(err)
		}
	}
	// Simulate the crash: release the lock and the files without a commit.
	d.data.Close()
	d.jnl.Close()
	s.lock.Close()
	s = openTest(t, dir, "k")
	defer s.Close()
	d = openDiskT(t, s, "d", base)
	checkAll(t, d, want)
	if got := d.Written(); got != 28*BlockSize {
		t.Errorf("Written %d, want %d", got, 28*BlockSize)
	}
}

// TestConcurrent runs writers on disjoint regions (checked against a
// model at the end) and writers and readers on one shared region (each
// block read must be one whole version of it), under -race.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	// Commits checkpoint often, so that checkpoints race with the rest.
	defer func(v int64) { checkpointSlack = v }(checkpointSlack)
	checkpointSlack = 8192
	dir := t.TempDir()
	const blocks = 512
	base := &patternBase{size: blocks * BlockSize}
	s := openTest(t, dir, "k")
	defer func() { s.Close() }()
	d := openDiskT(t, s, "d", base)
	model := base.bytes()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	// Four writers own blocks 0-255, 64 each, with unaligned writes.
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			lo := int64(w) * 64 * BlockSize
			for range 400 {
				off := lo + r.Int64N(60*BlockSize)
				p := randBytes(r, r.IntN(3*BlockSize)+1)
				if err := d.WriteAt(ctx, p, off); err != nil {
					errs <- err
					return
				}
				copy(model[off:], p) // disjoint regions of model
				if r.IntN(16) == 0 {
					if err := d.Sync(); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	// Blocks 256-511 are shared: whole-block versions and discards.
	for w := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := range 300 {
				b := uint64(256 + r.IntN(256))
				var err error
				switch r.IntN(8) {
				case 0:
					err = d.Discard(ctx, int64(b)*BlockSize, BlockSize)
				case 1:
					err = d.Sync()
				default:
					err = d.WriteAt(ctx, versionBlock(b, uint64(w*1000+i+1)), int64(b)*BlockSize)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for w := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 3))
			p := make([]byte, 8*BlockSize)
			for range 300 {
				b := uint64(256 + r.IntN(248))
				if err := d.ReadAt(ctx, p, int64(b)*BlockSize); err != nil {
					errs <- err
					return
				}
				for k := range uint64(8) {
					if msg := wholeVersion(p[k*BlockSize:(k+1)*BlockSize], b+k, base); msg != "" {
						errs <- errors.New(msg)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := make([]byte, 256*BlockSize)
	if err := d.ReadAt(ctx, got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, model[:256*BlockSize]) {
		t.Fatal("the disjoint writers' region differs from the model")
	}
	// What a reopen finds is what was there.
	all := make([]byte, base.size)
	if err := d.ReadAt(ctx, all, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, "k")
	checkAll(t, openDiskT(t, s, "d", base), all)
}

// wholeVersion says what is wrong with block b's bytes p when they are
// not the base's, all zeros, or one versionBlock of b.
func wholeVersion(p []byte, b uint64, base *patternBase) string {
	if isZero(p) {
		return ""
	}
	want := make([]byte, BlockSize)
	base.ReadAt(context.Background(), want, int64(b)*BlockSize)
	if bytes.Equal(p, want) {
		return ""
	}
	if bytes.Equal(p, versionBlock(b, binary.LittleEndian.Uint64(p[8:]))) {
		return ""
	}
	var vs []string
	for i := 0; i < BlockSize; i += 16 {
		vs = append(vs, fmt.Sprintf("%d/%d", binary.LittleEndian.Uint64(p[i:]), binary.LittleEndian.Uint64(p[i+8:])))
	}
	return fmt.Sprintf("block %d is a mix of versions: %v", b, slices.Compact(vs))
}

// TestConcurrentPartialWrites has goroutines write single bytes into the
// same few blocks, each owning the bytes at offsets ≡ its number mod 4:
// every write must land, which it would not if two read-merge-writes of
// one block interleaved.
func TestConcurrentPartialWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), "k")
	defer s.Close()
	const size = 16 * BlockSize
	base := &patternBase{size: size}
	d := openDiskT(t, s, "d", base)
	model := base.bytes()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range 600 {
				off := int64(r.IntN(size/4))*4 + int64(w)
				v := []byte{byte(i)}
				if err := d.WriteAt(ctx, v, off); err != nil {
					t.Error(err)
					return
				}
				model[off] = v[0] // this goroutine's bytes only
				if i%100 == 99 {
					d.Sync()
				}
			}
		})
	}
	wg.Wait()
	checkAll(t, d, model)
}

// TestDiscardWholeDisk discards a 64 GiB disk, as mkfs on a loop device
// does: the map holds a pointer per 16 MiB, the journal a few records,
// and the disk reads as zeros, before and after reopening.
func TestDiscardWholeDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const size = 64<<30 + 3*BlockSize + 100
	base := &patternBase{size: size}
	s := openTest(t, dir, "k")
	d := openDiskT(t, s, "d", base)
	for _, off := range []int64{0, 5 << 30, size - 4000} {
		if err := d.WriteAt(ctx, bytes.Repeat([]byte{7}, 3000), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Discard(ctx, 1000, size-1000); err != nil {
		t.Fatal(err)
	}
	check := func(d *Disk) {
		t.Helper()
		if d.Written() != BlockSize {
			t.Errorf("Written %d, want one block (the first, partly discarded)", d.Written())
		}
		p := make([]byte, 8192)
		for _, off := range []int64{0, 5 << 30, size - 8192} {
			if err := d.ReadAt(ctx, p, off); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, len(p))
			if off == 0 {
				copy(want, bytes.Repeat([]byte{7}, 1000))
			}
			if !bytes.Equal(p, want) {
				t.Errorf("at %d: not zeros after the discard", off)
			}
		}
		if next, ok, err := d.SeekData(BlockSize, nil); err != nil || ok {
			t.Errorf("SeekData after the discard: %d, %v, %v", next, ok, err)
		}
	}
	check(d)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if d.jnlEnd > 1<<20 {
		t.Errorf("the journal is %d bytes after one discard", d.jnlEnd)
	}
	// Reopen from the journal (no checkpoint), then from a checkpoint.
	d.data.Close()
	d.jnl.Close()
	s.lock.Close()
	s = openTest(t, dir, "k")
	check(openDiskT(t, s, "d", base))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, "k")
	defer s.Close()
	check(openDiskT(t, s, "d", base))
}
