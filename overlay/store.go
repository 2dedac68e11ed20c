package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Identity is what binds an overlay folder to one archive.
type Identity struct {
	// Key is compared exactly: a digest of the archive, say, so that a
	// changed archive has another Key.
	Key string
	// Name, when set, names the archive (its path or file name). When the
	// folder's Name equals the one opened but the Key differs, the error
	// says the archive changed rather than that it is another one.
	Name string
	// Describe is what messages show: "appliance.ova (sha256 3f2a…, 2.1 GB)".
	Describe string
}

// Errors callers test with errors.Is.
var (
	// ErrOtherArchive: the folder was made for another archive, or for
	// this one before it changed. The message names both.
	ErrOtherArchive = errors.New("overlay: the folder belongs to another archive")
	// ErrNotOverlay: the folder holds files but no overlay record.
	ErrNotOverlay = errors.New("overlay: not an overlay folder")
	// ErrBusy: another process has the folder open.
	ErrBusy = errors.New("overlay: the folder is in use")
	// ErrPastEnd: a read or write reaches past the disk's size, which an
	// overlay never changes.
	ErrPastEnd = errors.New("overlay: past the end of the disk")
	// ErrClosed: the store or disk was closed.
	ErrClosed = errors.New("overlay: closed")
)

const (
	recordName = "overlay.json"
	lockName   = "overlay.lock"
	dataExt    = ".data"
	journalExt = ".journal"
	recordKind = "ovfmount-overlay"
)

// record is the folder's identity file.
type record struct {
	Format   string    `json:"format"`
	Version  int       `json:"version"`
	Key      string    `json:"key"`
	Name     string    `json:"name,omitempty"`
	Describe string    `json:"describe"`
	Created  time.Time `json:"created"`
}

// Store is an overlay folder opened for one archive. It holds the
// folder's lock until Close.
type Store struct {
	dir  string
	id   Identity
	lock *os.File

	mu     sync.Mutex
	disks  map[string]*Disk
	closed bool
}

// Open opens the overlay folder dir for the archive id, creating the
// folder and its record when dir is missing or empty. A folder recorded
// for another Key is refused with ErrOtherArchive; one another process
// holds, with ErrBusy.
func Open(dir string, id Identity) (*Store, error) {
	if id.Key == "" {
		return nil, fmt.Errorf("overlay: %s: the archive identity has no key", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	rec, err := readRecord(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		names, err := dirNames(dir)
		if err != nil {
			return nil, err
		}
		// What an Open that crashed before its record was renamed into
		// place leaves behind does not make the folder someone else's.
		names = slices.DeleteFunc(names, func(n string) bool { return n == lockName || n == recordName+".tmp" })
		if len(names) > 0 {
			return nil, fmt.Errorf("%w: %s holds %s but no %s", ErrNotOverlay, dir, strings.Join(names[:min(3, len(names))], ", "), recordName)
		}
	case err != nil:
		return nil, err
	default:
		if err := checkIdentity(dir, rec, id); err != nil {
			return nil, err
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is open in another process", ErrBusy, dir)
		}
		return nil, fmt.Errorf("overlay: lock %s: %w", dir, err)
	}
	if rec == nil {
		// Under the lock now, so two processes cannot both write a record.
		if rec2, err := readRecord(dir); err == nil {
			if err := checkIdentity(dir, rec2, id); err != nil {
				lock.Close()
				return nil, err
			}
		} else {
			r := record{Format: recordKind, Version: 1, Key: id.Key, Name: id.Name, Describe: id.Describe, Created: time.Now().UTC()}
			if err := writeRecord(dir, r); err != nil {
				lock.Close()
				return nil, err
			}
		}
	}
	return &Store{dir: dir, id: id, lock: lock, disks: map[string]*Disk{}}, nil
}

func checkIdentity(dir string, rec *record, id Identity) error {
	if rec.Key == id.Key {
		return nil
	}
	if rec.Name != "" && rec.Name == id.Name {
		return fmt.Errorf("%w: %s belongs to %s as it was (%s), and it has changed since (now %s)", ErrOtherArchive, dir, rec.Name, rec.Describe, id.Describe)
	}
	return fmt.Errorf("%w: %s belongs to %s, not %s", ErrOtherArchive, dir, rec.Describe, id.Describe)
}

func dirNames(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, nil
}

// maxRecord bounds the identity file read: it is a few hundred bytes.
const maxRecord = 1 << 16

func readRecord(dir string) (*record, error) {
	p := filepath.Join(dir, recordName)
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := regular(f); err != nil {
		return nil, err
	}
	b := make([]byte, maxRecord+1)
	n, _ := f.Read(b)
	if n > maxRecord {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrCorrupt, p, maxRecord)
	}
	var r record
	if err := json.Unmarshal(b[:n], &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if r.Format != recordKind || r.Version != 1 || r.Key == "" {
		return nil, fmt.Errorf("%w: %s is not an ovfmount overlay record of version 1", ErrCorrupt, p)
	}
	return &r, nil
}

func writeRecord(dir string, r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	return writeAtomic(dir, recordName, append(b, '\n'))
}

// writeAtomic replaces dir/name with b so that a crash leaves the old file
// or the new one: a temporary file, synced, renamed, and the folder synced.
func writeAtomic(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("overlay: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("overlay: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("overlay: sync %s: %w", dir, err)
	}
	return nil
}

// validName accepts a view's file name such as "disk1.vmdk": one path
// element, not hidden, not one of the folder's own files.
func validName(name string) error {
	if name == "" || len(name) > 200 || !filepath.IsLocal(name) || strings.ContainsAny(name, `/\`+"\x00") ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "overlay.") {
		return fmt.Errorf("overlay: %q is not a usable disk name", name)
	}
	return nil
}

// Dir is the folder the store uses.
func (s *Store) Dir() string { return s.dir }

// Disk opens the overlay of one disk of the archive, creating it on first
// use. size is the view's size, which a disk's overlay keeps for good:
// opening it again with another size fails with ErrCorrupt. base is the
// view underneath, read for the parts of blocks a write leaves out and
// for every block the overlay does not hold. A disk is opened once per
// Store.
func (s *Store) Disk(name string, size int64, base Base) (*Disk, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if size < 0 || size > maxDiskSize {
		return nil, fmt.Errorf("overlay: %s: size %d is out of range (at most %d)", name, size, int64(maxDiskSize))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if _, ok := s.disks[name]; ok {
		return nil, fmt.Errorf("overlay: %s: the disk is already open", name)
	}
	d, err := openDisk(s.dir, name, size, base)
	if err != nil {
		return nil, err
	}
	s.disks[name] = d
	return d, nil
}

// Close syncs and closes every disk (writing each one's checkpoint) and
// releases the folder. It returns the first error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var first error
	for _, d := range s.disks {
		if err := d.close(); err != nil && first == nil {
			first = err
		}
	}
	if err := s.lock.Close(); err != nil && first == nil {
		first = fmt.Errorf("overlay: %w", err)
	}
	return first
}
