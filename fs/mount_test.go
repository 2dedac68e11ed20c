package fs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// testMount mounts a plan in-process on a temporary folder and unmounts it
// when the test ends, failing the test if the unmount fails.
func testMount(t *testing.T, entries []*appliance.Entry) string {
	t.Helper()
	return testMountWith(t, entries, Options{})
}

// testMountWith is testMount with further tree options; the owner and the
// log are the test's.
func testMountWith(t *testing.T, entries []*appliance.Entry, opts Options) string {
	t.Helper()
	testutil.RequireFUSE(t)
	dir := t.TempDir()
	opts.UID, opts.GID = uint32(os.Getuid()), uint32(os.Getgid())
	opts.Log = zerolog.New(zerolog.NewTestWriter(t))
	if opts.Size == 0 {
		for _, e := range entries {
			if e.Content != nil {
				opts.Size += e.Content.Size() // what statfs reports: the files' bytes
			}
		}
	}
	root := NewRoot(entries, opts)
	srv, err := Mount(dir, root, MountOptions{FsName: "test.ova", Log: zerolog.New(zerolog.NewTestWriter(t)),
		Debug: testing.Verbose() && os.Getenv("OVFMOUNT_FUSE_DEBUG") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

type panicReader struct{}

func (panicReader) ReadAt(p []byte, off int64) (int, error) { panic("decoder bug") }

type failReader struct{}

func (failReader) ReadAt(p []byte, off int64) (int, error) {
	return 0, errors.New("grain 7 is damaged")
}

func TestMountTree(t *testing.T) {
	disk := randomBytes(2<<20+77, 4)
	p, _ := testPackage(t, map[string][]byte{"disk1.vmdk": disk, "appliance.ovf": []byte("<Envelope/>"), "sub/x": []byte("x")},
		tarSymlink("link", "../../etc/passwd"))
	entries := withFile(p.Entries, "disks.test/panics.raw", &readerContent{r: panicReader{}, size: 4096})
	entries = withFile(entries, "disks.test/fails.raw", &readerContent{r: failReader{}, size: 4096})
	mnt := testMount(t, entries)

	got, err := os.ReadFile(filepath.Join(mnt, "disk1.vmdk"))
	if err != nil || !bytes.Equal(got, disk) {
		t.Fatalf("disk1.vmdk through the mount: %d bytes, %v", len(got), err)
	}
	st, err := os.Stat(filepath.Join(mnt, "disk1.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || st.ModTime().Unix() != 1700000000 || int(sys.Uid) != os.Getuid() || sys.Blocks != (int64(len(disk))+511)/512 {
		t.Errorf("stat: mode %v mtime %v uid %d blocks %d", st.Mode(), st.ModTime(), sys.Uid, sys.Blocks)
	}
	if target, err := os.Readlink(filepath.Join(mnt, "link")); err != nil || target != "../../etc/passwd" {
		t.Errorf("readlink = %q, %v", target, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create: %v, want EROFS", err)
	}
	if _, err := os.OpenFile(filepath.Join(mnt, "disk1.vmdk"), os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("open for writing: %v, want EROFS", err)
	}
	if err := os.Remove(filepath.Join(mnt, "appliance.ovf")); !errors.Is(err, syscall.EROFS) {
		t.Errorf("unlink: %v, want EROFS", err)
	}
	// Read-only tools still fsync what they open (partx does, and reports
	// a failure as "write failed").
	for _, name := range []string{"disk1.vmdk", "sub"} {
		f, err := os.Open(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Errorf("fsync %s: %v", name, err)
		}
		f.Close()
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(mnt, &sfs); err != nil || sfs.Blocks == 0 || sfs.Bfree != 0 || sfs.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("statfs: %+v, %v", sfs, err)
	}

	// A panic and an error in a handler each fail their own read with EIO;
	// the mount keeps serving.
	for _, name := range []string{"panics.raw", "fails.raw"} {
		if _, err := os.ReadFile(filepath.Join(mnt, "disks.test", name)); !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: err %v, want EIO", name, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "appliance.ovf")); err != nil || string(got) != "<Envelope/>" {
		t.Errorf("after the failures: %q, %v", got, err)
	}
}

func TestMountInodesStable(t *testing.T) {
	p, _ := testPackage(t, map[string][]byte{"a/b/c.txt": []byte("c"), "d.vmdk": []byte("d")})
	inos := func(mnt string) map[string]uint64 {
		out := map[string]uint64{}
		filepath.Walk(mnt, func(p string, info os.FileInfo, err error) error {
			if err == nil {
				rel, _ := filepath.Rel(mnt, p)
				out[rel] = info.Sys().(*syscall.Stat_t).Ino
			}
			return nil
		})
		return out
	}
	first := inos(testMount(t, p.Entries))
	second := inos(testMount(t, p.Entries))
	if len(first) != 5 {
		t.Fatalf("walked %v", first)
	}
	for p, ino := range first {
		if second[p] != ino {
			t.Errorf("%s: inode %d, then %d", p, ino, second[p])
		}
	}
}

// TestMountSparseMember checks SEEK_DATA, SEEK_HOLE and st_blocks for a
// member GNU tar stored sparse.
func TestMountSparseMember(t *testing.T) {
	testutil.RequireTool(t, "tar")
	src := t.TempDir()
	f, _ := os.Create(filepath.Join(src, "disk.raw"))
	f.Truncate(16 << 20)
	f.WriteAt(bytes.Repeat([]byte("D"), 1<<20), 4<<20)
	f.Close()
	archive := filepath.Join(t.TempDir(), "sparse.ova")
	if out, err := exec.Command("tar", "--format=posix", "--sparse", "-cf", archive, "-C", src, "disk.raw").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	mnt := testMount(t, openPackage(t, archive).Entries)
	g, err := os.Open(filepath.Join(mnt, "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if off, err := unix.Seek(int(g.Fd()), 0, unix.SEEK_DATA); err != nil || off != 4<<20 {
		t.Errorf("SEEK_DATA from 0 = %d, %v; want %d", off, err, 4<<20)
	}
	if off, err := unix.Seek(int(g.Fd()), 4<<20, unix.SEEK_HOLE); err != nil || off != 5<<20 {
		t.Errorf("SEEK_HOLE from 4 MiB = %d, %v; want %d", off, err, 5<<20)
	}
	gst, _ := g.Stat()
	if blocks := gst.Sys().(*syscall.Stat_t).Blocks; blocks != (1<<20)/512 {
		t.Errorf("st_blocks = %d, want %d", blocks, (1<<20)/512)
	}
	all, _ := os.ReadFile(filepath.Join(mnt, "disk.raw"))
	want, _ := os.ReadFile(filepath.Join(src, "disk.raw"))
	if !bytes.Equal(all, want) {
		t.Error("sparse member contents differ")
	}
}
