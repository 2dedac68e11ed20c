package nbd

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/rs/zerolog"
)

// blockSize is the allocation granularity of the test exports.
const blockSize = 64 << 10

// memExport is an in-memory export: data, and which blocks are allocated.
// An unallocated block reads as zeroes and is a hole.
type memExport struct {
	mu    sync.RWMutex
	data  []byte
	alloc []bool
}

func (m *memExport) Size() int64 { return int64(len(m.data)) }

func (m *memExport) ReadAt(_ context.Context, p []byte, off int64) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	copy(p, m.data[off:])
	return nil
}

func (m *memExport) Extents(_ context.Context, off, length int64, fn func(int64, bool, bool) bool) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	end := off + length
	for off < end {
		b := off / blockSize
		n := min((b+1)*blockSize, end) - off
		hole := !m.alloc[b]
		if !fn(n, hole, hole) {
			return nil
		}
		off += n
	}
	return nil
}

// bytes returns a copy of the export's contents.
func (m *memExport) bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bytes.Clone(m.data)
}

// writableExport adds Writer to memExport.
type writableExport struct {
	memExport
	flushes int
}

func (w *writableExport) WriteAt(_ context.Context, p []byte, off int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	copy(w.data[off:], p)
	for b := off / blockSize; b*blockSize < off+int64(len(p)); b++ {
		w.alloc[b] = true
	}
	return nil
}

func (w *writableExport) Flush(context.Context) error {
	w.mu.Lock()
	w.flushes++
	w.mu.Unlock()
	return nil
}

func (w *writableExport) Trim(_ context.Context, off, length int64) error {
	return w.zero(off, length, true)
}

func (w *writableExport) WriteZeroes(_ context.Context, off, length int64, mayTrim bool) error {
	return w.zero(off, length, mayTrim)
}

// zero clears a range; blocks it covers whole become holes when allowed.
func (w *writableExport) zero(off, length int64, hole bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.data[off : off+length])
	for b := off / blockSize; b*blockSize < off+length; b++ {
		whole := b*blockSize >= off && (b+1)*blockSize <= off+length
		if hole && whole {
			w.alloc[b] = false
		} else if !hole {
			w.alloc[b] = true
		}
	}
	return nil
}

// newMem makes an export of size bytes where every third block is a hole
// and the block after each hole is allocated but zero; the rest is random.
func newMem(size int64, seed uint64) *memExport {
	m := &memExport{data: make([]byte, size), alloc: make([]bool, (size+blockSize-1)/blockSize)}
	r := rand.New(rand.NewPCG(seed, seed))
	for b := range m.alloc {
		switch b % 3 {
		case 1:
			continue // hole
		case 2:
			m.alloc[b] = true // allocated zeroes
			continue
		}
		m.alloc[b] = true
		for i := int64(b) * blockSize; i < min(int64(b+1)*blockSize, size); i++ {
			m.data[i] = byte(r.Uint32())
		}
	}
	return m
}

// testServer serves exports on a Unix socket in a temporary folder and
// closes the server when the test ends, checking that Serve returned.
func testServer(t testing.TB, exports map[string]Export, opts Options) (socket string, s *Server) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "nbd.sock")
	l, err := Listen("unix:"+socket, false, false)
	if err != nil {
		t.Fatal(err)
	}
	opts.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	if testing.Verbose() {
		opts.Log = opts.Log.Level(zerolog.DebugLevel)
	}
	s = NewServer(exports, opts)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return socket, s
}

// uri is the libnbd/qemu URI of an export on a Unix socket.
func uri(socket, name string) string {
	return "nbd+unix:///" + name + "?socket=" + socket
}

// run runs an external tool (found with RequireTool) and returns its
// standard output; it fails the test with the tool's standard error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	path := testutil.RequireTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// execTool is a command for an external tool (found with RequireTool),
// killed if it outlives the test's patience.
func execTool(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	path := testutil.RequireTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return exec.CommandContext(ctx, path, args...)
}

// dialRaw connects to a test server's socket.
func dialRaw(t testing.TB, socket string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
