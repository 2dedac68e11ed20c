package ova

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// WatchedFile is an archive file that notices when it changes underneath
// the index: truncated, rewritten (its mtime moves), or replaced by
// another file at its path. From then on every read fails with ErrChanged
// and names the cause, instead of returning bytes that belong to another
// layout. Checking costs a stat every watchInterval, and an fstat before
// each zero-copy read (see Check), where a short read would otherwise look
// like the end of a file.
type WatchedFile struct {
	f     *os.File
	path  string
	size  int64
	mtime time.Time
	dev   uint64
	ino   uint64

	changed atomic.Pointer[error]
	stop    chan struct{}
	once    sync.Once
}

const watchInterval = 500 * time.Millisecond

// WatchFile starts watching f, opened from path.
func WatchFile(f *os.File, path string) (*WatchedFile, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	w := &WatchedFile{f: f, path: path, size: st.Size(), mtime: st.ModTime(), stop: make(chan struct{})}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		w.dev, w.ino = uint64(sys.Dev), sys.Ino
	}
	go w.watch()
	return w, nil
}

func (w *WatchedFile) watch() {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if w.examine() != nil {
				return // once changed, always changed
			}
		}
	}
}

// examine compares the file and its path with what was indexed.
func (w *WatchedFile) examine() error {
	if err := w.changed.Load(); err != nil {
		return *err
	}
	var cause string
	if st, err := w.f.Stat(); err != nil {
		cause = fmt.Sprintf("it cannot be examined: %v", err)
	} else if st.Size() < w.size {
		cause = fmt.Sprintf("it was truncated from %d to %d bytes", w.size, st.Size())
	} else if st.Size() != w.size || !st.ModTime().Equal(w.mtime) {
		cause = fmt.Sprintf("it was modified (size %d, mtime %s; indexed: size %d, mtime %s)",
			st.Size(), st.ModTime().Format(time.RFC3339Nano), w.size, w.mtime.Format(time.RFC3339Nano))
	} else if ps, err := os.Stat(w.path); err != nil {
		cause = fmt.Sprintf("its path %s is gone (%v)", w.path, err)
	} else if sys, ok := ps.Sys().(*syscall.Stat_t); ok && (uint64(sys.Dev) != w.dev || sys.Ino != w.ino) {
		cause = fmt.Sprintf("its path %s now names another file", w.path)
	}
	if cause == "" {
		return nil
	}
	err := fmt.Errorf("ova: archive %s: %s: %w", w.path, cause, ErrChanged)
	w.changed.CompareAndSwap(nil, &err)
	return *w.changed.Load()
}

// Check reports whether the archive still is what was indexed, with a
// quick fstat of its size (the cheap part of examine).
func (w *WatchedFile) Check() error {
	if err := w.changed.Load(); err != nil {
		return *err
	}
	st, err := w.f.Stat()
	if err != nil || st.Size() < w.size {
		return w.examine()
	}
	return nil
}

// ReadAt reads the archive unless it has changed.
func (w *WatchedFile) ReadAt(p []byte, off int64) (int, error) {
	if err := w.changed.Load(); err != nil {
		return 0, *err
	}
	n, err := w.f.ReadAt(p, off)
	if n < len(p) && off+int64(len(p)) <= w.size {
		// The archive held these bytes when it was indexed.
		if cerr := w.examine(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

// Fd is the archive's descriptor, for zero-copy reads (after Check).
func (w *WatchedFile) Fd() uintptr { return w.f.Fd() }

// Close stops watching; it does not close the file.
func (w *WatchedFile) Close() { w.once.Do(func() { close(w.stop) }) }
