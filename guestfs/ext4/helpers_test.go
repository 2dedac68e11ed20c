package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// srcOpts says what buildSource puts in the host folder mkfs.ext4 -d
// copies into a new image.
type srcOpts struct {
	share  []string // folders of /usr/share to copy (real files)
	bigDir int      // entries of big/, enough to make an htree
	huge   bool     // a sparse file past 4 GiB
	far    int64    // where the sparse file's last block is written
	// bigXattr is the size of user.big, the value too large for the
	// inode: it goes to the xattr block, which must hold it.
	bigXattr int
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, name)
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// aclValue is a POSIX ACL in the xattr form setfattr and getfattr use:
// version 2, then (tag, perm, id) entries.
func aclValue(entries ...[3]uint32) string {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return "0x" + fmt.Sprintf("%x", b)
}

// buildSource fills dir with what an image should hold: real files, and
// every kind of thing the reader has to get right.
func buildSource(t testing.TB, dir string, o srcOpts) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range o.share {
		run(t, "cp", "-a", "/usr/share/"+s, filepath.Join(dir, filepath.Base(s)))
	}
	p := func(s string) string { return filepath.Join(dir, s) }
	write(t, p("small"), []byte("small file\n"))
	write(t, p("empty"), nil)
	write(t, p("medium"), bytes.Repeat([]byte("0123456789abcdef"), 5000))
	// Names: the longest allowed, non-ASCII, and not UTF-8 at all.
	write(t, p(strings.Repeat("n", 251)+".txt"), []byte("long name"))
	write(t, p("héllo wörld ✓ 日本語"), []byte("utf-8 name"))
	write(t, p("latin1-\xe9\xff"), []byte("not utf-8"))
	// Symlinks: fast (in the inode), slow (a block), long.
	for name, target := range map[string]string{
		"link-short": "small", "link-dangling": "../../nowhere",
		"link-61": strings.Repeat("x", 61), "link-long": strings.Repeat("long/", 200) + "end",
	} {
		if err := os.Symlink(target, p(name)); err != nil {
			t.Fatal(err)
		}
	}
	// Hard links.
	write(t, p("hard/a"), []byte("linked three times\n"))
	for _, n := range []string{"hard/b", "c-hard"} {
		if err := os.Link(p("hard/a"), p(n)); err != nil {
			t.Fatal(err)
		}
	}
	// Sparse files: holes between written blocks; far into the map.
	sparse := func(name string, size int64, at ...int64) { writeAt(t, p(name), size, at...) }
	sparse("sparse", 3<<20, 0, 1<<20, 3<<20-5000)
	if o.far > 0 {
		sparse("sparse-far", o.far+8192, 1<<20, o.far)
	}
	if o.huge {
		sparse("sparse-5g", 5<<30, 4<<30+12345, 5<<30-5000)
	}
	// Devices (both number encodings) and a FIFO.
	for name, dev := range map[string]struct {
		mode     uint32
		maj, min uint32
	}{"dev/null": {unix.S_IFCHR, 1, 3}, "dev/sda1": {unix.S_IFBLK, 8, 1}, "dev/big": {unix.S_IFCHR, 300, 70000}} {
		os.MkdirAll(filepath.Dir(p(name)), 0o755)
		if err := unix.Mknod(p(name), dev.mode|0o640, int(unix.Mkdev(dev.maj, dev.min))); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(p("dev/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Extended attributes: small (in the inode), large (a block), every
	// name space, and POSIX ACLs.
	write(t, p("xattr/file"), []byte("has attributes\n"))
	write(t, p("xattr/acl"), []byte("has an ACL\n"))
	os.MkdirAll(p("xattr/dir"), 0o755)
	xs := map[string][]string{
		"xattr/file": {"user.small=abc", "user.big=" + strings.Repeat("v", o.bigXattr), "trusted.t=trusted value", "security.s=sec"},
		"xattr/acl":  {"system.posix_acl_access=" + aclValue([3]uint32{1, 6, 0xFFFFFFFF}, [3]uint32{2, 4, 1000}, [3]uint32{4, 4, 0xFFFFFFFF}, [3]uint32{8, 5, 70000}, [3]uint32{0x10, 5, 0xFFFFFFFF}, [3]uint32{0x20, 0, 0xFFFFFFFF})},
		"xattr/dir":  {"system.posix_acl_default=" + aclValue([3]uint32{1, 7, 0xFFFFFFFF}, [3]uint32{4, 5, 0xFFFFFFFF}, [3]uint32{0x20, 1, 0xFFFFFFFF}), "user.dir=d"},
	}
	for f, list := range xs {
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			run(t, "setfattr", "-h", "-n", k, "-v", v, p(f))
		}
	}
	// Modes and owners past 16 bits.
	write(t, p("modes/setuid"), []byte("#!/bin/sh\n"))
	write(t, p("modes/setgid"), []byte("#!/bin/sh\n"))
	os.MkdirAll(p("modes/sticky"), 0o755)
	os.Chmod(p("modes/setuid"), 0o4755)
	os.Chmod(p("modes/setgid"), 0o2711)
	os.Chmod(p("modes/sticky"), 0o1777)
	os.Lchown(p("modes/setuid"), 70000, 80000)
	os.Lchown(p("modes/sticky"), 100000, 65536)
	os.Lchown(p("link-short"), 123456, 654321)
	// Times: nanoseconds, before 1970, past 2038 (the epoch bits).
	for name, ts := range map[string]string{"small": "2001-02-03 04:05:06.123456789", "medium": "1960-01-01 00:00:00.5",
		"modes/setgid": "2100-06-07 08:09:10.999999999", "hard/a": "2038-01-19 03:14:08.000000001"} {
		run(t, "touch", "-h", "-m", "-d", ts, p(name))
		run(t, "touch", "-h", "-a", "-d", "1999-12-31 23:59:59.987654321", p(name))
	}
	if o.bigDir > 0 {
		fillBigDir(t, p("big"), o.bigDir)
	}
}

// fillBigDir makes a directory of n empty files, a third of them with
// bytes >= 0x80 in their names, where signed and unsigned hashes differ.
func fillBigDir(t testing.TB, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("entry-%05d", i)
		if i%3 == 0 {
			name += "-ünïcödé-\xe9"
		}
		write(t, filepath.Join(dir, name), []byte(name))
	}
}

// kernelFill mounts img read-write and lets fn add to it: the kernel
// builds a large directory's htree itself, in a fraction of the time
// mkfs -d takes to insert into an unindexed one.
func kernelFill(t testing.TB, img string, fn func(mnt string)) {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		if os.Geteuid() == 0 && os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatalf("mount: %v: %s", err, out)
		}
		t.Skipf("read-write kernel mount failed: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v: %s", err, out)
		}
	}()
	fn(mnt)
}

// mkfs makes an image of size MiB from src with mkfs.ext4 and args.
func mkfs(t testing.TB, dir, src string, sizeMiB int64, args ...string) string {
	t.Helper()
	return mkfsKiB(t, dir, src, sizeMiB<<10, args...)
}

// mkfsKiB makes an image of size KiB (small fuzz seeds).
func mkfsKiB(t testing.TB, dir, src string, sizeKiB int64, args ...string) string {
	t.Helper()
	img := filepath.Join(dir, "fs.img")
	os.Remove(img)
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(sizeKiB << 10)
	f.Close()
	a := append([]string{"-q", "-F"}, args...)
	if src != "" {
		a = append(a, "-d", src)
	}
	run(t, "mkfs.ext4", append(a, img)...)
	// mkfs -d links entries into plain directories; e2fsck -D indexes
	// every directory of more than a block, as the kernel would have.
	if out, err := runErr("e2fsck", "-fyD", img); err != nil && !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
	}
	return img
}

func openImage(t testing.TB, img string) *FS {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// debugfs runs a debugfs request on img (-w: writable) and returns what
// it printed on standard output (its banner and complaints go to
// standard error, which fails the test when the request did not run).
func debugfs(t testing.TB, img string, writable bool, req string) string {
	t.Helper()
	testutil.RequireTool(t, "debugfs")
	args := []string{"-R", req, img}
	if writable {
		args = append([]string{"-w"}, args...)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("debugfs", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs %s: %v\n%s", req, err, stderr.String())
	}
	if e := strings.TrimSpace(stderr.String()); strings.Count(e, "\n") > 0 || !strings.HasPrefix(e, "debugfs ") {
		t.Fatalf("debugfs %s: %s", req, e)
	}
	return stdout.String()
}

var debugfsFlags = regexp.MustCompile(`Flags: (0x[0-9a-f]+)`)

// setFlags adds inode flags to a file with debugfs, which keeps the
// inode checksum right.
func setFlags(t testing.TB, img, path string, add uint32) {
	t.Helper()
	m := debugfsFlags.FindStringSubmatch(debugfs(t, img, false, "stat "+path))
	if m == nil {
		t.Fatalf("debugfs stat %s: no flags", path)
	}
	old, _ := strconv.ParseUint(m[1], 0, 32)
	debugfs(t, img, true, fmt.Sprintf("set_inode_field %s flags %#x", path, uint32(old)|add))
}

// compareWithKernel walks fsys and the kernel's read-only mount of img,
// and compares every path: bytes, type, mode, owner, size, link count,
// inode number, xattrs, all three times to the nanosecond (Equal), then
// what Tree does not see: creation time and st_blocks (statx), flags
// (FS_IOC_GETFLAGS) and holes (SEEK_DATA/SEEK_HOLE). It returns the number
// of paths compared.
func compareWithKernel(t *testing.T, img string, fsys *FS) int {
	t.Helper()
	got := guestfstest.Walk(t, fsys, 1000000)
	mnt := testutil.KernelMount(t, img, "ext4", "noload")
	// Holes first: once the kernel has read a file, its page cache makes
	// unwritten extents count as data.
	holes := 0
	for p, n := range got {
		if n.Attr.Mode&guestfs.TypeMask != guestfs.TypeRegular || n.Attr.Size == 0 {
			continue
		}
		f, err := fsys.Open(n.Attr.Ino)
		if err != nil {
			t.Fatal(err)
		}
		g, err := ourSegments(f.(guestfs.Sparse), n.Attr.Size)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// Asking the kernel about every file is slow: ask about those
		// we see holes in, or with fewer blocks than bytes (the block
		// counts are compared with the kernel's below).
		if len(g) == 1 && g[0] == [2]int64{0, n.Attr.Size} && n.Attr.Blocks >= n.Attr.Size {
			continue
		}
		k, err := kernelSegments(filepath.Join(mnt, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if fmt.Sprint(g) != fmt.Sprint(k) {
			t.Errorf("%q: data segments %v, kernel %v", p, g, k)
		}
		if len(k) != 1 || k[0] != [2]int64{0, n.Attr.Size} {
			holes++
		}
	}
	want := guestfstest.Tree(t, mnt)
	guestfstest.Equal(t, got, want, guestfstest.Compare{Owner: true, Perm: true, Nlink: true, Ino: true, Xattrs: true, Times: time.Nanosecond})
	btimes := 0
	for p, w := range want {
		g := got[p]
		if g == nil {
			continue
		}
		full := filepath.Join(mnt, p)
		var stx unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, full, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME|unix.STATX_BLOCKS, &stx); err != nil {
			t.Fatal(err)
		}
		if stx.Mask&unix.STATX_BTIME != 0 {
			btimes++
			if bt := time.Unix(stx.Btime.Sec, int64(stx.Btime.Nsec)); !g.Attr.Btime.Equal(bt) {
				t.Errorf("%q: btime %v, kernel %v", p, g.Attr.Btime, bt)
			}
		} else if !g.Attr.Btime.IsZero() {
			t.Errorf("%q: btime %v, kernel has none", p, g.Attr.Btime)
		}
		if int64(stx.Blocks)*512 != g.Attr.Blocks {
			t.Errorf("%q: blocks %d bytes, kernel %d", p, g.Attr.Blocks, stx.Blocks*512)
		}
		if typ := w.Attr.Mode & guestfs.TypeMask; typ == guestfs.TypeRegular || typ == guestfs.TypeDir {
			fd, err := unix.Open(full, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			kf, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
			unix.Close(fd)
			if err != nil {
				t.Fatal(err)
			}
			var want guestfs.Flags
			for bit, f := range map[uint32]guestfs.Flags{0x10: guestfs.FlagImmutable, 0x20: guestfs.FlagAppend, 0x40: guestfs.FlagNoDump, 0x800: guestfs.FlagEncrypted} {
				if kf&bit != 0 {
					want |= f
				}
			}
			if g.Attr.Flags != want {
				t.Errorf("%q: flags %v, kernel %#x", p, g.Attr.Flags, kf)
			}
		}
	}
	indexed := checkIndexes(t, fsys, got)
	t.Logf("%d paths compared with the kernel (%d with holes, %d with a creation time, %d htree directories)", len(want), holes, btimes, indexed)
	return len(want)
}

// kernelSegments lists a file's data as [start, end) pairs through
// SEEK_DATA and SEEK_HOLE.
func kernelSegments(path string) ([][2]int64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var segs [][2]int64
	for off := int64(0); ; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			return segs, nil
		}
		if err != nil {
			return nil, err
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		segs = append(segs, [2]int64{d, h})
		off = h
	}
}

func ourSegments(s guestfs.Sparse, size int64) ([][2]int64, error) {
	var segs [][2]int64
	for off := int64(0); off < size; {
		d, ok, err := s.NextData(off)
		if err != nil || !ok {
			return segs, err
		}
		h, err := s.NextHole(d)
		if err != nil {
			return nil, err
		}
		if h <= d {
			return nil, fmt.Errorf("hole at %d after data at %d", h, d)
		}
		segs = append(segs, [2]int64{d, h})
		off = h
	}
	return segs, nil
}

// blkid returns blkid's low-level probe of img as a map (TYPE, UUID, ...).
func blkid(t testing.TB, img string) map[string]string {
	t.Helper()
	out := run(t, "blkid", "-p", "-o", "export", img)
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func checkInfo(t *testing.T, img string, fsys *FS) {
	t.Helper()
	b := blkid(t, img)
	in := fsys.Info()
	if in.Type != b["TYPE"] || in.UUID != b["UUID"] || in.Label != b["LABEL"] || strconv.Itoa(in.BlockSize) != b["BLOCK_SIZE"] {
		t.Errorf("info %+v, blkid %v", in, b)
	}
	st, _ := os.Stat(img)
	if in.Size <= 0 || in.Size > st.Size() {
		t.Errorf("size %d of a %d-byte image", in.Size, st.Size())
	}
}

// scratch is a folder for sources and images: in /dev/shm where there is
// one, since mke2fs syncs its image and a busy disk makes that slow.
func scratch(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "ext4test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// checkIndexes looks every name of every htree directory up through the
// index alone (Lookup would fall back to a scan): a wrong hash function
// or descent fails here. It returns the number of indexed directories.
func checkIndexes(t *testing.T, fsys *FS, got map[string]*guestfstest.Node) int {
	t.Helper()
	n := 0
	for p, node := range got {
		in, err := fsys.inode(node.Attr.Ino)
		if err != nil || node.Attr.Mode&guestfs.TypeMask != guestfs.TypeDir || !fsys.indexed(in) {
			continue
		}
		n++
		err = fsys.ReadDir(node.Attr.Ino, func(e guestfs.DirEntry) error {
			d, found, err := fsys.htreeLookup(in, e.Name)
			if err != nil || !found || uint64(d.ino) != e.Ino {
				return fmt.Errorf("htree lookup of %q: found %v, inode %d, %v; want inode %d", e.Name, found, d.ino, err, e.Ino)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%q: %v", p, err)
		}
		if _, found, err := fsys.htreeLookup(in, "no such name"); found || err != nil {
			t.Errorf("%q: htree lookup of a missing name: %v, %v", p, found, err)
		}
	}
	return n
}
