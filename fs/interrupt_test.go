package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/route"
)

// onThread runs f on a goroutine locked to its own thread and returns that
// thread's id once f has started, so the test can signal exactly the
// thread that waits on the mount. f's error arrives on the channel.
func onThread(f func() error) (tid int, done <-chan error) {
	tids, errc := make(chan int), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- syscall.Gettid()
		errc <- f()
	}()
	return <-tids, errc
}

// interrupt signals thread tid with SIGURG, which the Go runtime ignores
// (it preempts with it) but which makes the kernel interrupt the FUSE
// request the thread waits on.
func interrupt(t *testing.T, tid int) {
	t.Helper()
	if err := syscall.Tgkill(os.Getpid(), tid, syscall.SIGURG); err != nil {
		t.Fatal(err)
	}
}

// interruptContent waits in its first read until that read's request is
// cancelled, and counts the later reads whose context was cancelled before
// they began.
type interruptContent struct {
	*readerContent
	first     atomic.Bool
	waiting   chan struct{} // closed when the first read waits
	cancelled atomic.Bool   // the first read saw its request cancelled
	stale     atomic.Int32  // later reads that started cancelled
}

func (c *interruptContent) Read(ctx context.Context, p []byte, off int64, splice bool) (route.Reply, error) {
	if c.first.CompareAndSwap(false, true) {
		close(c.waiting)
		select {
		case <-ctx.Done():
			c.cancelled.Store(true)
			return route.Reply{}, ctx.Err()
		case <-time.After(10 * time.Second):
		}
	} else if ctx.Err() != nil {
		c.stale.Add(1)
	}
	return c.readerContent.Read(ctx, p, off, splice)
}

// TestInterruptCancelsOnlyItsRead: a reader interrupted while the daemon
// serves it gets EINTR and the daemon stops that read (a stuck read of a
// remote archive can be given up), and no later read starts out cancelled
// (go-fuse pools its requests, cancel channel included). Direct I/O sends
// every read to the daemon.
func TestInterruptCancelsOnlyItsRead(t *testing.T) {
	data := randomBytes(1<<20, 7)
	c := &interruptContent{readerContent: &readerContent{r: &bytesReader{data}, size: int64(len(data))}, waiting: make(chan struct{})}
	entries := withFile([]*appliance.Entry{{Path: "", Type: appliance.Dir, Perm: 0o755}}, "f", c)
	mnt := testMountWith(t, entries, Options{DirectIO: true})
	path := filepath.Join(mnt, "f")

	tid, done := onThread(func() error {
		fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		_, err = syscall.Pread(fd, make([]byte, 4096), 0)
		return err
	})
	<-c.waiting
	interrupt(t, tid)
	if err := <-done; !errors.Is(err, syscall.EINTR) {
		t.Fatalf("interrupted read: %v, want EINTR", err)
	}
	if !c.cancelled.Load() {
		t.Fatal("the interrupted read was not cancelled in the daemon")
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := range 256 {
		off := int64(i) * 4096
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatalf("read %d after the interrupt: %v", i, err)
		}
		if string(buf) != string(data[off:off+4096]) {
			t.Fatalf("read %d after the interrupt: wrong bytes", i)
		}
	}
	if n := c.stale.Load(); n != 0 {
		t.Errorf("%d of 256 reads after the interrupt began with their request cancelled", n)
	}
}

// TestGuestListingSurvivesInterrupt: a reader interrupted while a guest
// folder is listed still gets every name. Before the lister ignored
// interrupts, go-fuse kept the EINTR and dropped the first name of each
// later reply (see guestDirHandle.Readdirent): 67 of these 3,000.
func TestGuestListingSurvivesInterrupt(t *testing.T) {
	fsys := &flatFS{n: 3000, pause: 300, reached: make(chan struct{}), resume: make(chan struct{})}
	entries := []*appliance.Entry{
		{Path: "", Type: appliance.Dir, Perm: 0o755},
		{Path: "files", Type: appliance.Dir, Perm: 0o755},
		{Path: "files/vol", Type: appliance.Dir, Perm: 0o755, Guest: &appliance.GuestTree{Volume: "vol", FS: fsys, Status: func() string { return "off" }}},
	}
	mnt := testMount(t, entries)

	var names []string
	tid, done := onThread(func() error {
		fd, err := syscall.Open(filepath.Join(mnt, "files/vol"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		buf := make([]byte, 8192) // what Go's readdir asks for: many replies
		for {
			n, err := syscall.Getdents(fd, buf)
			if err == syscall.EINTR {
				continue // as readdir does
			}
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			_, _, names = syscall.ParseDirent(buf[:n], -1, names)
		}
	})
	<-fsys.reached
	time.Sleep(50 * time.Millisecond) // the reader drains what was listed and waits for the next name
	interrupt(t, tid)
	time.Sleep(50 * time.Millisecond) // the interrupt reaches the daemon
	close(fsys.resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range names {
		seen[name] = true
	}
	missing := 0
	for i := range fsys.n {
		if !seen[fsys.name(i)] {
			missing++
		}
	}
	if missing != 0 || len(names) != fsys.n {
		t.Fatalf("listed %d names (%d distinct), %d of %d missing", len(names), len(seen), missing, fsys.n)
	}
}
