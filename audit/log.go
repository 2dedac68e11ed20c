package audit

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// Limits of what one line holds; a file's ranges that outgrow them are
// written as a line at once.
const (
	maxRanges  = 1000 // ranges in one read line
	maxReaders = 16   // distinct readers in one read line
	maxPath    = 4096 // bytes of a path (Linux's PATH_MAX); longer ones are cut, and marked so
)

// syncEvery is how often pending ranges are written and the log fsynced
// (a variable for tests).
var syncEvery = time.Second

// sink is where the log's bytes go: its file, or a failing one in tests.
type sink interface {
	io.Writer
	Sync() error
}

// Log is an audit log open for appending. Its methods are safe for
// concurrent use.
type Log struct {
	path string
	file *os.File
	w    sink
	now  func() time.Time
	// procs turns the thread ids of FUSE requests into process ids.
	procs *processes

	// failed is set, with err, by the first failed write or fsync: from
	// then on every Open and Read fails.
	failed atomic.Bool

	mu      sync.Mutex
	err     error
	buf     []byte // lines not yet written
	head    string // the hash of the last line put in buf
	seq     uint64 // the next line's
	started bool
	created bool               // Open made the file: Close removes it if nothing was started
	files   map[*File]struct{} // open files
	nextID  uint64
	lost    int // lines dropped by a failure
	onError func(error)

	writeMu sync.Mutex // one write and fsync at a time
	dirty   bool       // written since the last fsync; under writeMu

	stop chan struct{}
	done chan struct{}
}

// Open opens the log at path for appending, creating it (mode 0600: it
// names what was read) if it does not exist, and takes an exclusive lock
// on it, so that two mounts never interleave their lines. An existing log
// is continued: its last line must be a complete line of an audit log,
// whose hash the next line records. A log whose end is damaged (cut
// mid-line, or not a line of this format) is refused: appending to it
// would hide the damage. Nothing is written until [Log.Start], and a file
// Open created is removed by a Close without a Start.
func Open(path string) (*Log, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	created := true
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		created = false
		f, err = os.OpenFile(abs, os.O_RDWR|os.O_APPEND, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l, err := open(f)
	if err != nil {
		f.Close()
		if created {
			os.Remove(abs)
		}
		return nil, fmt.Errorf("audit log %s: %w", abs, err)
	}
	l.created = created
	return l, nil
}

func open(f *os.File) (*Log, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("in use by another process (a mount still appending to it)")
		}
		return nil, fmt.Errorf("locking: %w", err)
	}
	l := &Log{path: f.Name(), file: f, w: f, now: time.Now, procs: newProcesses(time.Now), files: map[*File]struct{}{}}
	if st.Size() > 0 {
		if err := l.continueChain(f, st.Size()); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// continueChain reads the log's first and last lines: the first must be a
// start line (else this is not an audit log), and the last gives the
// chain's head and the next seq.
func (l *Log) continueChain(f *os.File, size int64) error {
	first, _, err := lineAt(f, 0, size)
	if err != nil {
		return err
	}
	var r Record
	if json.Unmarshal(first, &r) != nil || r.Type != TypeStart || r.Seq != 0 {
		return errors.New("not an ovfmount audit log (its first line is not a start record); name a new file")
	}
	last, err := lastLine(f, size)
	if err != nil {
		return err
	}
	r = Record{}
	if err := json.Unmarshal(last, &r); err != nil || !known(r.Type) {
		return errors.New("its last line is not an audit record: the log is damaged at its end; keep it as it is, check it with 'ovfmount audit verify', and name a new file")
	}
	l.head, l.seq = hashLine(last), r.Seq+1
	return nil
}

// lineAt reads the line that starts at off (without its newline).
func lineAt(f io.ReaderAt, off, size int64) ([]byte, int64, error) {
	buf := make([]byte, min(size-off, maxLine+1))
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, 0, err
	}
	for i, c := range buf {
		if c == '\n' {
			return buf[:i], off + int64(i) + 1, nil
		}
	}
	return nil, 0, errors.New("its first line is cut short or too long: not an audit log, or a damaged one; name a new file")
}

// lastLine reads the log's last line, which must end with a newline.
func lastLine(f io.ReaderAt, size int64) ([]byte, error) {
	n := min(size, maxLine+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return nil, err
	}
	if buf[n-1] != '\n' {
		return nil, errors.New("its last line is cut short (no newline at its end): the log is damaged at its end, as a crash mid-write or a full disk leaves it; keep it as it is, check it with 'ovfmount audit verify', and name a new file")
	}
	body := buf[:n-1]
	for i := len(body) - 1; i >= 0; i-- {
		if body[i] == '\n' {
			return body[i+1:], nil
		}
	}
	if n < size {
		return nil, errors.New("its last line is longer than any audit line: the log is damaged at its end; name a new file")
	}
	return body, nil
}

// Start is what a start line says about the mount.
type Start struct {
	Archive    string // what was mounted (several, for a library)
	Identity   string // the archive's fingerprint ("" when there is none)
	Mountpoint string
	Program    string // the program and version writing the log
}

// Start writes the session's start line and makes it durable, then writes
// and fsyncs the log every second until [Log.Close]. An error here means
// the log cannot be written, and the mount must not start. onError is
// told of a later failure, once.
func (l *Log) Start(s Start, onError func(error)) error {
	l.mu.Lock()
	l.onError = onError
	l.appendLocked(Record{Type: TypeStart, Version: formatVersion, Archive: s.Archive, Identity: s.Identity,
		Mountpoint: s.Mountpoint, Program: s.Program, DaemonPid: os.Getpid()})
	l.started = true
	l.mu.Unlock()
	if err := l.flush(true); err != nil {
		return err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.loop()
	return nil
}

func (l *Log) loop() {
	defer close(l.done)
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.pending()
			l.flush(false)
		}
	}
}

// pending writes a read line for every open file with ranges not yet in
// one.
func (l *Log) pending() {
	l.mu.Lock()
	files := make([]*File, 0, len(l.files))
	for f := range l.files {
		files = append(files, f)
	}
	l.mu.Unlock()
	for _, f := range files {
		f.mu.Lock()
		f.emitLocked()
		f.mu.Unlock()
	}
}

// appendLocked chains r to the log's lines in memory. l.mu is held.
func (l *Log) appendLocked(r Record) {
	if l.err != nil {
		l.lost++
		return
	}
	r.Seq, r.Prev = l.seq, l.head
	if r.Time.IsZero() {
		r.Time = l.now().UTC()
	}
	line, err := json.Marshal(r)
	if err != nil { // only unencodable values fail, and a Record has none
		l.failLocked(fmt.Errorf("encoding a line: %w", err))
		return
	}
	l.buf = append(append(l.buf, line...), '\n')
	l.head = hashLine(line)
	l.seq++
}

// failLocked records the log's first failure: every later Open and Read
// fails with it. l.mu is held.
func (l *Log) failLocked(err error) {
	if l.err != nil {
		return
	}
	l.err = fmt.Errorf("audit log %s failed, so reads are refused (EIO) rather than served unlogged: %w", l.path, err)
	l.failed.Store(true)
	if l.onError != nil {
		go l.onError(l.err)
	}
}

// Err is the log's failure, nil while it works.
func (l *Log) Err() error {
	if !l.failed.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// flush writes the lines in memory, and fsyncs when anything was written
// since the last fsync (or always, with force).
func (l *Log) flush(force bool) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	buf := l.buf
	l.buf = nil
	err := l.err
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if len(buf) > 0 {
		if _, err := l.w.Write(buf); err != nil {
			return l.failWrite(fmt.Errorf("writing: %w", err), buf)
		}
		l.dirty = true
	}
	if l.dirty || force {
		if err := l.w.Sync(); err != nil {
			return l.failWrite(fmt.Errorf("fsync: %w", err), nil)
		}
		l.dirty = false
	}
	return nil
}

func (l *Log) failWrite(err error, unwritten []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range unwritten {
		if c == '\n' {
			l.lost++
		}
	}
	l.failLocked(err)
	return l.err
}

// Close writes what every file still open has pending (their close lines
// say "unclosed") and a stop line, fsyncs and closes the log, and returns
// the log's head: the hash of its last line, which proves the whole log
// when kept elsewhere ("" without a Start). After a failure it returns the
// failure, and how many lines it lost.
func (l *Log) Close() (head string, err error) {
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	l.mu.Lock()
	files := make([]*File, 0, len(l.files))
	for f := range l.files {
		files = append(files, f)
	}
	l.mu.Unlock()
	for _, f := range files {
		f.release(true)
	}
	l.mu.Lock()
	if l.started {
		l.appendLocked(Record{Type: TypeStop})
	}
	l.mu.Unlock()
	err = l.flush(l.started)
	l.mu.Lock()
	head, lost := l.head, l.lost
	if !l.started {
		head = ""
	}
	l.mu.Unlock()
	if cerr := l.file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("audit log %s: closing: %w", l.path, cerr)
	}
	if l.created && !l.started {
		os.Remove(l.path) // the mount never started: leave no empty log
	}
	if err != nil && lost > 0 {
		err = fmt.Errorf("%w (%d lines were never written)", err, lost)
	}
	return head, err
}

// File is one open of a file, whose reads are recorded.
type File struct {
	l       *Log
	id      uint64
	path    string
	pathHex string // see Record.PathHex

	mu      sync.Mutex
	ranges  spans
	bytes   int64
	first   time.Time
	last    time.Time
	readers []Reader
	closed  bool
	// lastWho and lastReader are the latest read's caller as given and
	// as recorded (its process), so that a reader's next read costs no
	// look-up.
	lastWho, lastReader Reader
}

// Open records that who opened path, and returns the open file whose
// reads to record. It fails once the log has failed. who.Pid may be a
// thread's id, as FUSE gives it: the log records its process.
func (l *Log) Open(path string, who Reader) (*File, error) {
	if l.failed.Load() {
		return nil, l.Err()
	}
	who = l.procs.reader(who)
	if len(path) > maxPath {
		path = path[:maxPath]
	}
	var pathHex string
	if !utf8.ValidString(path) {
		pathHex = hex.EncodeToString([]byte(path))
		path = strings.ToValidUTF8(path, "\ufffd")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	l.nextID++
	f := &File{l: l, id: l.nextID, path: path, pathHex: pathHex}
	l.appendLocked(Record{Type: TypeOpen, Open: f.id, Path: path, PathHex: pathHex, Reader: &who})
	l.files[f] = struct{}{}
	return f, nil
}

// Read records that n bytes at off are being served to who (whose Pid
// may be a thread's, as in Open). It must return nil before the bytes are
// given out: an error (the log failed) means they must not be.
func (f *File) Read(off int64, n int, who Reader) error {
	if f.l.failed.Load() {
		return f.l.Err()
	}
	now := f.l.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if who != f.lastWho || len(f.readers) == 0 {
		f.lastWho, f.lastReader = who, f.l.procs.reader(who)
	}
	if k := len(f.readers); k == 0 || f.readers[k-1] != f.lastReader {
		f.addReader(f.lastReader)
	}
	if len(f.ranges) == 0 {
		f.first = now
	}
	f.ranges.add(off, int64(n))
	f.bytes += int64(n)
	f.last = now
	if len(f.ranges) >= maxRanges {
		f.emitLocked()
	}
	return nil
}

// addReader notes who among the readers of the pending ranges, last (so
// that the next read by the same reader finds it at once). A reader more
// than a line holds first has the pending ranges written as a line.
func (f *File) addReader(who Reader) {
	for i, r := range f.readers {
		if r == who {
			copy(f.readers[i:], f.readers[i+1:])
			f.readers[len(f.readers)-1] = who
			return
		}
	}
	if len(f.readers) >= maxReaders {
		f.emitLocked()
	}
	f.readers = append(f.readers, who)
}

// emitLocked writes the file's pending ranges as a read line. f.mu is
// held; it takes l.mu (always in that order).
func (f *File) emitLocked() {
	if len(f.ranges) == 0 {
		return
	}
	first, last := f.first.UTC(), f.last.UTC()
	r := Record{Type: TypeRead, Open: f.id, Path: f.path, PathHex: f.pathHex, Ranges: f.ranges.pairs(), Bytes: f.bytes,
		First: &first, Last: &last, Readers: f.readers}
	f.ranges, f.bytes, f.readers = f.ranges[:0], 0, nil
	f.l.mu.Lock()
	f.l.appendLocked(r)
	f.l.mu.Unlock()
}

// Release records that the file was closed: its pending ranges, then its
// close line.
func (f *File) Release() { f.release(false) }

func (f *File) release(unclosed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	f.emitLocked()
	f.l.mu.Lock()
	f.l.appendLocked(Record{Type: TypeClose, Open: f.id, Path: f.path, PathHex: f.pathHex, Unclosed: unclosed})
	delete(f.l.files, f)
	f.l.mu.Unlock()
}
