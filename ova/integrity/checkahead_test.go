package integrity

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

// eventually polls cond for up to ten seconds: check-ahead runs on its own
// goroutines, and only its outcome, not its timing, is under test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never happened: %s", what)
}

// TestCheckAheadSequential: a reader that goes on from where it stopped
// gets the next chunks checked before it asks, and still reads the right
// bytes; the file's last chunk bounds it.
func TestCheckAheadSequential(t *testing.T) {
	chunks := 3 + checkAheadChunks + 1
	f, disk, _, _ := verifiedPkg(t, chunks*ChunkSize+4321)
	buf := make([]byte, ChunkSize)
	// The third read is the second to move forward: a sequential reader.
	for _, off := range []int64{0, ChunkSize, 2 * ChunkSize} {
		if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, disk[off:off+ChunkSize]) {
			t.Fatalf("read at %d: %v, or wrong bytes", off, err)
		}
	}
	// Whether the cache holds the chunks, fresh or not: on a loaded machine
	// (go test -race beside other builds) a second may pass between the
	// check of a chunk ahead and the poll that looks for it.
	for c := 3; c < 3+checkAheadChunks; c++ {
		eventually(t, "chunk checked ahead", func() bool { return recent.entered(f, c) })
	}
	eventually(t, "check-ahead finished", func() bool { return f.ahead.inFlight.Load() == 0 })
	if recent.entered(f, chunks-1) {
		t.Error("checked ahead past its window")
	}
	rest := make([]byte, len(disk)-3*ChunkSize)
	if _, err := f.ReadAt(rest, 3*ChunkSize); err != nil || !bytes.Equal(rest, disk[3*ChunkSize:]) {
		t.Fatalf("reading on: %v, or wrong bytes", err)
	}
}

// TestCheckAheadRandom: requests that do not continue each other check
// nothing ahead, so random readers pay only for what they read.
func TestCheckAheadRandom(t *testing.T) {
	f, _, _, _ := verifiedPkg(t, 10*ChunkSize+4321)
	buf := make([]byte, 4096)
	for _, off := range []int64{3 * ChunkSize, 7*ChunkSize + 100, 1 * ChunkSize} {
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if n := f.ahead.inFlight.Load(); n != 0 {
			t.Fatalf("after a read at %d, %d chunks are checked ahead", off, n)
		}
	}
	for _, c := range []int{4, 8, 2} {
		if recent.holds(f, c) {
			t.Errorf("chunk %d was checked ahead of a random reader", c)
		}
	}
}

// TestCheckAheadFindsDamage: a chunk damaged after verification is caught
// by check-ahead as by a read: the file is marked, with an event naming
// the piece, and every later read fails.
func TestCheckAheadFindsDamage(t *testing.T) {
	f, disk, path, o := verifiedPkg(t, 6*ChunkSize+4321)
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := o.a.Lookup("disk1.vmdk")
	_, phys, _ := m.Contiguous()
	w.WriteAt([]byte{^disk[3*ChunkSize+7]}, phys+3*ChunkSize+7)
	w.Close()

	buf := make([]byte, ChunkSize)
	f.ReadAt(buf, 0)
	f.ReadAt(buf, ChunkSize)
	f.ReadAt(buf, 2*ChunkSize) // may already fail, if chunk 3's check was quick
	named := func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, e := range o.events {
			if e.Status == StatusMismatch && e.Piece == 3*piecesPerChunk {
				return true
			}
		}
		return false
	}
	eventually(t, "a mismatch event naming piece 96, in chunk 3", named)
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, ErrMismatch) || f.Status() != StatusMismatch {
		t.Errorf("a read after the mismatch: %v, status %s", err, f.Status())
	}
}

// TestCheckAheadParallelReaders has sequential readers, each at its own
// request size and starting point, race through a file larger than the
// recent-chunk cache, so chunks checked ahead for one reader are evicted
// and recycled while others copy out of them: every byte must be right.
func TestCheckAheadParallelReaders(t *testing.T) {
	f, disk, _, _ := verifiedPkg(t, (recentChunks+checkAheadChunks+3)*ChunkSize+4321)
	var wg sync.WaitGroup
	for g, n := range []int{ChunkSize, ChunkSize - 12<<10, 300000, 3 * ChunkSize / 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, n)
			for off := int64(g) * 777777; off < int64(len(disk)); off += int64(n) {
				k, err := f.ReadAt(buf, off)
				want := disk[off:min(off+int64(n), int64(len(disk)))]
				if (err != nil && err != io.EOF) || !bytes.Equal(buf[:k], want) {
					t.Errorf("reader %d: read of %d at %d: %d bytes, %v, or wrong bytes", g, n, off, k, err)
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

// entered reports whether chunk c of f has an entry in the cache, however
// old.
func (cc *chunkCache) entered(f *File, c int) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.entries[chunkKey{f, c}] != nil
}

// TestCheckAheadWindowFollowsRequestSize: a sequential reader of small
// records (a disk decoder) gets one chunk checked ahead, a reader of whole
// chunks checkAheadChunks.
func TestCheckAheadWindowFollowsRequestSize(t *testing.T) {
	for _, c := range []struct{ n, want int }{{4096, 1}, {32 << 10, 1}, {ChunkSize / 4, 2}, {ChunkSize / 2, 4}, {ChunkSize, checkAheadChunks}, {4 * ChunkSize, checkAheadChunks}} {
		if got := aheadWindow(c.n); got != c.want {
			t.Errorf("aheadWindow(%d) = %d, want %d", c.n, got, c.want)
		}
	}
	f, disk, _, _ := verifiedPkg(t, 8*ChunkSize+4321)
	buf := make([]byte, 32<<10)
	for c := int64(0); c < 4; c++ {
		off := c * ChunkSize
		if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, disk[off:off+int64(len(buf))]) {
			t.Fatalf("read at %d: %v, or wrong bytes", off, err)
		}
	}
	eventually(t, "chunk checked ahead", func() bool { return recent.entered(f, 4) })
	eventually(t, "check-ahead finished", func() bool { return f.ahead.inFlight.Load() == 0 })
	if recent.entered(f, 5) {
		t.Error("a reader of 32 KiB records had two chunks checked ahead")
	}
}
