package vdisk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/vmdkwriter"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// gatedSource stands for a member on a strict-verification mount: a read
// made under a reader's context waits until the member is verified (gate
// closed) or the context ends. Plain ReadAt, which an image's metadata is
// read with when it is opened, is served at once.
type gatedSource struct {
	r       io.ReaderAt
	gate    chan struct{}
	waiting chan struct{} // one value per context read that starts waiting
}

func newGatedSource(b []byte) *gatedSource {
	return &gatedSource{r: bytes.NewReader(b), gate: make(chan struct{}), waiting: make(chan struct{}, 64)}
}

func (s *gatedSource) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }

func (s *gatedSource) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	select {
	case <-s.gate:
	default:
		s.waiting <- struct{}{}
		select {
		case <-s.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.r.ReadAt(p, off)
}

var _ ContextReaderAt = (*gatedSource)(nil)

// hangGuard bounds how long a test waits for something that must happen,
// so that a bug fails the test instead of hanging it. It is not a timing
// assertion: every wait it bounds normally ends at once.
const hangGuard = 10 * time.Second

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("%s never happened", what)
		var zero T
		return zero
	}
}

// readResult is what a ReadAtContext started on a goroutine returned.
type readResult struct {
	b   []byte
	err error
}

func readAsync(ctx context.Context, im Image, off int64, n int) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		b := make([]byte, n)
		_, err := im.ReadAtContext(ctx, b, off)
		ch <- readResult{b, err}
	}()
	return ch
}

// streamImage opens a streamOptimized VMDK of four grains of random bytes
// over a gated source, with a private cache of the given decode workers.
func streamImage(t *testing.T, workers int) (*image, *gatedSource, []byte) {
	t.Helper()
	plain := make([]byte, 4<<16)
	rand.New(rand.NewSource(1)).Read(plain)
	var file bytes.Buffer
	if err := vmdkwriter.Write(&file, bytes.NewReader(plain), int64(len(plain))); err != nil {
		t.Fatal(err)
	}
	src := newGatedSource(file.Bytes())
	c := NewCache(0, workers)
	t.Cleanup(c.Close)
	im, err := Open(src, int64(file.Len()), Options{Name: "disk1.vmdk", Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	return im.(*image), src, plain
}

func unitAt(t *testing.T, im *image, off int64) blockmap.Unit {
	t.Helper()
	r, err := im.mapRun(off)
	if err != nil || r.Kind != blockmap.Compressed {
		t.Fatalf("run at %d: %+v, %v; want a compressed grain", off, r, err)
	}
	return r.Unit
}

func checkRead(t *testing.T, got readResult, want []byte, what string) {
	t.Helper()
	if got.err != nil {
		t.Fatalf("%s: %v", what, got.err)
	}
	if !bytes.Equal(got.b, want) {
		t.Fatalf("%s: wrong bytes", what)
	}
}

// A read interrupted while its source waits returns the context's error,
// and leaves nothing behind: the next reader gets the bytes. Each way
// bytes are read is covered: a stored run, part of a grain (through the
// cache), a whole grain (decoded straight into the read's buffer).
func TestReadAtContextCancelWhileSourceWaits(t *testing.T) {
	raw := make([]byte, 3000)
	rand.New(rand.NewSource(2)).Read(raw)
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (Image, *gatedSource, []byte)
		off  int64
		n    int
	}{
		{"stored run", func(t *testing.T) (Image, *gatedSource, []byte) {
			src := newGatedSource(raw)
			im, err := Open(src, int64(len(raw)), Options{Name: "disk.img", Raw: true, Cache: NewCache(0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			return im, src, raw
		}, 1000, 1500},
		{"part of a grain", func(t *testing.T) (Image, *gatedSource, []byte) {
			return streamImage(t, 1)
		}, 1 << 16, 4096},
		{"whole grain", func(t *testing.T) (Image, *gatedSource, []byte) {
			return streamImage(t, 1)
		}, 1 << 16, 1 << 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, src, plain := tc.open(t)
			want := plain[tc.off:][:tc.n]
			ctx, cancel := context.WithCancel(context.Background())
			res := readAsync(ctx, im, tc.off, tc.n)
			await(t, src.waiting, "the read waiting for its source")
			cancel()
			if got := await(t, res, "the interrupted read returning"); !errors.Is(got.err, context.Canceled) {
				t.Fatalf("interrupted read: %v, want context.Canceled", got.err)
			}
			close(src.gate)
			checkRead(t, await(t, readAsync(context.Background(), im, tc.off, tc.n), "the next read"), want, "the next read")
		})
	}
}

// A reader waiting for a grain that another reader decodes stops waiting
// when its own context ends, and the decode goes on for the other.
func TestReadAtContextCancelWhileJoined(t *testing.T) {
	im, src, plain := streamImage(t, 1)
	u := unitAt(t, im, 0)
	first := readAsync(context.Background(), im, 0, 4096)
	await(t, src.waiting, "the first read waiting for its source")
	ctx, cancel := context.WithCancel(context.Background())
	joined := readAsync(ctx, im, 8192, 4096)
	waitRefs(t, im.cache, u, 2)
	cancel()
	if got := await(t, joined, "the interrupted read returning"); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("interrupted joined read: %v, want context.Canceled", got.err)
	}
	close(src.gate)
	checkRead(t, await(t, first, "the first read"), plain[:4096], "the first read")
}

// A decode abandoned because its reader was interrupted is not a failure
// of the grain: the reader that joined it decodes the grain itself.
func TestReadAtContextAbandonedDecodeIsRetried(t *testing.T) {
	im, src, plain := streamImage(t, 1)
	u := unitAt(t, im, 0)
	ctx, cancel := context.WithCancel(context.Background())
	first := readAsync(ctx, im, 0, 4096)
	await(t, src.waiting, "the first read waiting for its source")
	second := readAsync(context.Background(), im, 8192, 4096)
	waitRefs(t, im.cache, u, 2)
	cancel()
	if got := await(t, first, "the interrupted read returning"); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("interrupted read: %v, want context.Canceled", got.err)
	}
	await(t, src.waiting, "the joined read decoding the grain itself")
	close(src.gate)
	checkRead(t, await(t, second, "the joined read"), plain[8192:][:4096], "the joined read")
	if _, _, decodes := im.cache.Stats(); decodes != 2 {
		t.Errorf("%d decodes, want 2 (the abandoned one and the retry)", decodes)
	}
}

// A reader waiting for a decode worker stops waiting when its context
// ends, and the grain it wanted is not left half-loaded in the cache.
func TestReadAtContextCancelWhileWaitingForWorker(t *testing.T) {
	im, src, plain := streamImage(t, 1) // one worker, which the first read holds
	first := readAsync(context.Background(), im, 0, 4096)
	await(t, src.waiting, "the first read waiting for its source")
	u := unitAt(t, im, 1<<16)
	ctx, cancel := context.WithCancel(context.Background())
	queued := readAsync(ctx, im, 1<<16, 4096)
	waitRefs(t, im.cache, u, 1)
	cancel()
	if got := await(t, queued, "the interrupted read returning"); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("read waiting for a worker: %v, want context.Canceled", got.err)
	}
	close(src.gate)
	checkRead(t, await(t, first, "the first read"), plain[:4096], "the first read")
	checkRead(t, await(t, readAsync(context.Background(), im, 1<<16, 4096), "the next read"), plain[1<<16:][:4096], "the next read")
}

// A read whose context has already ended does not start.
func TestReadAtContextDoneBeforeRead(t *testing.T) {
	im, _, _ := streamImage(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := im.ReadAtContext(ctx, make([]byte, 10), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAtContext: %v, want context.Canceled", err)
	}
}
