package fs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/guestfs"
)

// filesFS is a guest filesystem of one folder of files with contents: the
// sizes say each file's length, a file listed in bad fails every read, and
// reads counts the reads of the files' data.
type filesFS struct {
	sizes []int
	bad   map[int]bool
	reads atomic.Int64
}

func (f *filesFS) name(i int) string { return fmt.Sprintf("f%03d", i) }

// content is file i's bytes: different in every file and at every offset.
func (f *filesFS) content(i int) []byte {
	b := make([]byte, f.sizes[i])
	for k := range b {
		b[k] = byte(i*7 + k*13 + k>>8)
	}
	return b
}

func (f *filesFS) Info() guestfs.Info { return guestfs.Info{Type: "test"} }
func (f *filesFS) Root() uint64       { return 1 }
func (f *filesFS) Stat(ino uint64) (guestfs.Attr, error) {
	if ino == 1 {
		return guestfs.Attr{Ino: 1, Mode: guestfs.TypeDir | 0o755, Nlink: 2}, nil
	}
	i := int(ino) - 2
	if i < 0 || i >= len(f.sizes) {
		return guestfs.Attr{}, guestfs.ErrNotExist
	}
	return guestfs.Attr{Ino: ino, Mode: guestfs.TypeRegular | 0o644, Nlink: 1, Size: int64(f.sizes[i])}, nil
}
func (f *filesFS) ReadDir(dir uint64, fn func(guestfs.DirEntry) error) error {
	for i := range f.sizes {
		if err := fn(guestfs.DirEntry{Name: f.name(i), Ino: uint64(i + 2), Type: guestfs.TypeRegular}); err != nil {
			return err
		}
	}
	return nil
}
func (f *filesFS) Lookup(dir uint64, name string) (guestfs.DirEntry, error) {
	var i int
	if _, err := fmt.Sscanf(name, "f%03d", &i); err != nil || i >= len(f.sizes) || name != f.name(i) {
		return guestfs.DirEntry{}, guestfs.ErrNotExist
	}
	return guestfs.DirEntry{Name: name, Ino: uint64(i + 2), Type: guestfs.TypeRegular}, nil
}
func (f *filesFS) Open(ino uint64) (guestfs.File, error) {
	i := int(ino) - 2
	if i < 0 || i >= len(f.sizes) {
		return nil, guestfs.ErrNotExist
	}
	return &filesFile{fs: f, i: i}, nil
}
func (f *filesFS) Readlink(ino uint64) (string, error)        { return "", guestfs.ErrNotLink }
func (f *filesFS) Xattrs(ino uint64) ([]guestfs.Xattr, error) { return nil, nil }

type filesFile struct {
	fs *filesFS
	i  int
}

var errDamaged = fmt.Errorf("test: a damaged grain: %w", guestfs.ErrCorrupt)

func (f *filesFile) Size() int64 { return int64(f.fs.sizes[f.i]) }
func (f *filesFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.reads.Add(1)
	if f.fs.bad[f.i] {
		return 0, errDamaged
	}
	b := f.fs.content(f.i)
	if off >= int64(len(b)) {
		return 0, errors.New("test: read past the end")
	}
	return copy(p, b[off:]), nil
}

// mountFiles mounts fsys as the guest volume "vol" and returns its folder.
func mountFiles(t *testing.T, fsys *filesFS) string {
	entries := []*appliance.Entry{
		{Path: "", Type: appliance.Dir, Perm: 0o755},
		{Path: "vol", Type: appliance.Dir, Perm: 0o755, Guest: &appliance.GuestTree{Volume: "vol", FS: fsys, Status: func() string { return "off" }}},
	}
	dir := filepath.Join(testMount(t, entries), "vol")
	if _, err := os.ReadDir(dir); err != nil { // the kernel learns the names, as a reader's listing does
		t.Fatal(err)
	}
	return dir
}

// resident reports whether the whole of the file at p is in the kernel's
// page cache, without reading it (mincore on a mapping).
func resident(t *testing.T, p string) bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	for _, v := range vec {
		if v&1 == 0 {
			return false
		}
	}
	return true
}

// waitResident waits until the file at p is in the page cache, or fails
// after 10 s: storing is done by a worker after the read's reply.
func waitResident(t *testing.T, p string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !resident(t, p); {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not stored in the page cache", filepath.Base(p))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readCompare(t *testing.T, fsys *filesFS, dir string, i int) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, fsys.name(i)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fsys.content(i)) {
		t.Fatalf("%s: %d bytes differ from the file's %d", fsys.name(i), len(got), len(fsys.content(i)))
	}
}

// TestFileAheadStoresNextFiles: once a small file is read, the next ones
// of its folder are in the page cache before anyone reads them, hold the
// files' own bytes, and reading them reaches no guest file; a reader that
// keeps going in order gets a window that grows to the folder's end.
func TestFileAheadStoresNextFiles(t *testing.T) {
	fsys := &filesFS{}
	for i := range 120 {
		fsys.sizes = append(fsys.sizes, 100+i*97) // up to 11.6 KiB, with partial last pages
	}
	dir := mountFiles(t, fsys)
	readCompare(t, fsys, dir, 0)
	for i := 1; i <= aheadStart; i++ {
		waitResident(t, filepath.Join(dir, fsys.name(i)))
	}
	before := fsys.reads.Load()
	for i := 1; i <= aheadStart; i++ {
		readCompare(t, fsys, dir, i)
	}
	if n := fsys.reads.Load() - before; n != 0 {
		t.Errorf("reading the %d stored files read the guest's files %d times, want 0", aheadStart, n)
	}
	// The reader reaches the window's end in order: the window grows.
	readCompare(t, fsys, dir, aheadStart+1)
	for i := aheadStart + 2; i <= aheadStart+1+aheadStart*4; i++ {
		waitResident(t, filepath.Join(dir, fsys.name(i)))
	}
	for i := aheadStart + 2; i < len(fsys.sizes); i++ {
		readCompare(t, fsys, dir, i)
	}
}

// TestFileAheadSkipsWhatItCannotStore: a file whose read fails is not
// stored and its reader gets EIO; a file larger than aheadFileMax and an
// empty one are left to their readers; the files after them are stored.
func TestFileAheadSkipsWhatItCannotStore(t *testing.T) {
	fsys := &filesFS{sizes: []int{5000, 5000, 5000, aheadFileMax + 1, 4096}, bad: map[int]bool{1: true}}
	dir := mountFiles(t, fsys)
	readCompare(t, fsys, dir, 0)
	waitResident(t, filepath.Join(dir, fsys.name(4)))
	if !resident(t, filepath.Join(dir, fsys.name(2))) {
		t.Errorf("%s, after the damaged file, was not stored", fsys.name(2))
	}
	for _, i := range []int{1, 3} {
		if resident(t, filepath.Join(dir, fsys.name(i))) {
			t.Errorf("%s was stored", fsys.name(i))
		}
	}
	if _, err := os.ReadFile(filepath.Join(dir, fsys.name(1))); !errors.Is(err, syscall.EIO) {
		t.Errorf("reading the damaged file: %v, want EIO", err)
	}
	for _, i := range []int{2, 3, 4} {
		readCompare(t, fsys, dir, i)
	}
}

// TestFileAheadWindow: the window starts at aheadStart, grows fourfold
// each time the reader comes back at its end in order, up to aheadMost;
// a read backwards shrinks it again, and while a reader goes forward a
// new folder starts at aheadStreak.
func TestFileAheadWindow(t *testing.T) {
	f := &aheadFolder{files: make([]aheadFile, aheadListMax), last: -1, win: aheadStart}
	var streak bool
	type step struct{ read, from, to int }
	want := []step{
		{0, 1, 1 + aheadStart},
		{2, 1 + aheadStart, 3 + aheadStart},                             // a read inside the window: no growth
		{3 + aheadStart, 4 + aheadStart, 4 + aheadStart + 4*aheadStart}, // at its end: it grows
	}
	for _, s := range want {
		from, to := f.next(s.read, &streak)
		if from != s.from || to != s.to {
			t.Fatalf("after reading %d: files [%d, %d), want [%d, %d)", s.read, from, to, s.from, s.to)
		}
		f.edge = to
	}
	if !streak {
		t.Error("a reader through the window in order is not on a streak")
	}
	for f.win < aheadMost {
		_, to := f.next(f.edge, &streak)
		f.edge = to
	}
	if f.win != aheadMost {
		t.Errorf("the window grew to %d, want at most %d", f.win, aheadMost)
	}
	from, to := f.next(3, &streak)
	if to-3-1 != aheadStart || from != f.edge || streak {
		t.Errorf("after a read backwards: [%d, %d), streak %v; want a window of %d and no streak", from, to, streak, aheadStart)
	}

	a := &fileAhead{streak: true}
	if g := a.folder(aheadRead{}); g.win != aheadStreak {
		t.Errorf("a new folder on a streak starts with %d files, want %d", g.win, aheadStreak)
	}
}

// TestFileAheadListsFromTheFileRead: a folder keeps aheadListMax files'
// names from the one read, at their positions in the whole folder, and a
// read past them lists it again from there.
func TestFileAheadListsFromTheFileRead(t *testing.T) {
	fsys := &filesFS{sizes: make([]int, aheadListMax+1000)}
	f := &aheadFolder{last: -1, win: aheadStart}
	for _, from := range []int{10, aheadListMax + 500} {
		f.list(fsys, 1, uint64(from+2))
		want := min(aheadListMax, len(fsys.sizes)-from)
		if f.base != from || len(f.files) != want || len(f.index) != want {
			t.Fatalf("listed from %d: base %d, %d files, %d indexed; want %d, %d", from, f.base, len(f.files), len(f.index), from, want)
		}
		last := from + want - 1
		if f.files[0].name != fsys.name(from) || f.index[uint64(last+2)] != last || f.files[last-f.base].name != fsys.name(last) {
			t.Fatalf("listed from %d: first %q, last at %d named %q", from, f.files[0].name, f.index[uint64(last+2)], f.files[last-f.base].name)
		}
	}
}
