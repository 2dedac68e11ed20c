package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/guestfs"
)

// flatFS is a guest filesystem of one folder of n empty files whose
// listing stops at entry pause until resume is closed.
type flatFS struct {
	n       int
	pause   int
	reached chan struct{}
	resume  chan struct{}
	once    sync.Once
}

func (f *flatFS) name(i int) string {
	return fmt.Sprintf("file-%05d-with-a-name-long-enough-to-fill-replies", i)
}

func (f *flatFS) Info() guestfs.Info { return guestfs.Info{Type: "test"} }
func (f *flatFS) Root() uint64       { return 1 }
func (f *flatFS) Stat(ino uint64) (guestfs.Attr, error) {
	if ino == 1 {
		return guestfs.Attr{Ino: 1, Mode: guestfs.TypeDir | 0o755, Nlink: 2}, nil
	}
	return guestfs.Attr{Ino: ino, Mode: guestfs.TypeRegular | 0o644, Nlink: 1}, nil
}
func (f *flatFS) ReadDir(dir uint64, fn func(guestfs.DirEntry) error) error {
	for i := range f.n {
		if i == f.pause {
			f.once.Do(func() { close(f.reached) })
			<-f.resume
		}
		if err := fn(guestfs.DirEntry{Name: f.name(i), Ino: uint64(i + 2), Type: guestfs.TypeRegular}); err != nil {
			return err
		}
	}
	return nil
}
func (f *flatFS) Lookup(dir uint64, name string) (guestfs.DirEntry, error) {
	var i int
	if _, err := fmt.Sscanf(name, "file-%05d-", &i); err != nil || i >= f.n || name != f.name(i) {
		return guestfs.DirEntry{}, guestfs.ErrNotExist
	}
	return guestfs.DirEntry{Name: name, Ino: uint64(i + 2), Type: guestfs.TypeRegular}, nil
}
func (f *flatFS) Open(ino uint64) (guestfs.File, error)      { return nil, guestfs.ErrUnsupported }
func (f *flatFS) Readlink(ino uint64) (string, error)        { return "", guestfs.ErrNotLink }
func (f *flatFS) Xattrs(ino uint64) ([]guestfs.Xattr, error) { return nil, nil }

// TestGuestListings: folders smaller and larger than what the lister may
// run ahead (dirAhead) show every name once, with its type, read afresh
// and from the kernel's cache.
func TestGuestListings(t *testing.T) {
	for _, n := range []int{0, 1, dirAhead, dirAhead + 1, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fsys := &flatFS{n: n, pause: -1}
			entries := []*appliance.Entry{
				{Path: "", Type: appliance.Dir, Perm: 0o755},
				{Path: "vol", Type: appliance.Dir, Perm: 0o755, Guest: &appliance.GuestTree{Volume: "vol", FS: fsys, Status: func() string { return "off" }}},
			}
			mnt := testMount(t, entries)
			for round := range 2 { // the second from the kernel's cache
				des, err := os.ReadDir(filepath.Join(mnt, "vol"))
				if err != nil {
					t.Fatal(err)
				}
				if len(des) != n {
					t.Fatalf("round %d: %d names, want %d", round, len(des), n)
				}
				for i, de := range des { // os.ReadDir sorts, and so do the names
					if de.Name() != fsys.name(i) || !de.Type().IsRegular() {
						t.Fatalf("round %d: entry %d is %q (%v), want regular %q", round, i, de.Name(), de.Type(), fsys.name(i))
					}
				}
			}
		})
	}
}
