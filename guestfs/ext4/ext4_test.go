package ext4

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestKernelDefault compares a default ext4 (4 KiB blocks, extents,
// 64bit, metadata_csum, flex_bg, huge_file, 256-byte inodes) holding real
// files and every special case with the kernel's mount of the same image.
func TestKernelDefault(t *testing.T) {
	dir := scratch(t)
	src := filepath.Join(dir, "src")
	buildSource(t, src, srcOpts{share: []string{"zoneinfo", "mime"}, far: 6 << 20, bigXattr: 3000})
	write(t, filepath.Join(src, "prealloc"), []byte("written"))
	os.Truncate(filepath.Join(src, "prealloc"), 256<<10)
	img := mkfs(t, dir, src, 160, "-b", "4096", "-L", "guest-root", "-E", "root_owner=1000:2000")
	kernelFill(t, img, func(mnt string) { fillBigDir(t, filepath.Join(mnt, "big"), 5000) })
	// Flags and unwritten extents, which mkfs -d does not make.
	setFlags(t, img, "/small", 0x10)
	setFlags(t, img, "/medium", 0x20)
	setFlags(t, img, "/xattr/file", 0x40)
	setFlags(t, img, "/modes/sticky", 0x10)
	debugfs(t, img, true, "fallocate /prealloc 1 40")

	fsys := openImage(t, img)
	checkInfo(t, img, fsys)
	if n := compareWithKernel(t, img, fsys); n < 7000 {
		t.Errorf("only %d paths", n)
	}
	checkCrtime(t, img, fsys, "/small", "/big", "/xattr/acl")
	if w := fsys.Info().Warnings; len(w) != 0 {
		t.Errorf("warnings on a clean volume: %q", w)
	}
}

var debugfsCrtime = regexp.MustCompile(`crtime: 0x([0-9a-f]+):([0-9a-f]+)`)
var debugfsInode = regexp.MustCompile(`Inode: (\d+) `)

// checkCrtime compares Btime with the crtime debugfs prints (seconds and
// the extra word: epoch bits and nanoseconds).
func checkCrtime(t *testing.T, img string, fsys *FS, paths ...string) {
	t.Helper()
	for _, p := range paths {
		out := debugfs(t, img, false, "stat "+p)
		m, mi := debugfsCrtime.FindStringSubmatch(out), debugfsInode.FindStringSubmatch(out)
		if m == nil || mi == nil {
			t.Fatalf("debugfs stat %s: %s", p, out)
		}
		sec, _ := strconv.ParseUint(m[1], 16, 32)
		extra, _ := strconv.ParseUint(m[2], 16, 32)
		want := time.Unix(int64(int32(sec))+int64(extra&3)<<32, int64(extra>>2))
		ino, _ := strconv.ParseUint(mi[1], 10, 64)
		a, err := fsys.Stat(ino)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Btime.Equal(want) {
			t.Errorf("%s: btime %v, debugfs %v", p, a.Btime, want)
		}
	}
}

// TestKernelVariants compares other feature sets with the kernel: ext2
// and ext3 (block maps with double and triple indirect blocks), small
// blocks, inline data, no checksums, 128-byte inodes (no nanoseconds),
// meta_bg, bigalloc, and each htree hash.
func TestKernelVariants(t *testing.T) {
	src := filepath.Join(scratch(t), "src")
	buildSource(t, src, srcOpts{share: []string{"X11/locale"}, bigDir: 500, bigXattr: 700})
	for _, v := range []struct {
		name string
		args []string
		// after changes the image after mkfs (an unsigned hash flag).
		after func(t *testing.T, img string)
	}{
		{"ext2-1k", []string{"-t", "ext2", "-b", "1024"}, nil},
		{"ext3-2k", []string{"-t", "ext3", "-b", "2048"}, nil},
		{"ext4-1k-nocsum-32bit", []string{"-b", "1024", "-O", "^metadata_csum,^64bit"}, nil},
		{"ext4-inline", []string{"-b", "4096", "-O", "inline_data"}, nil},
		{"ext4-no-dir-index", []string{"-b", "1024", "-O", "^dir_index"}, nil},
		{"ext4-128-inodes", []string{"-b", "4096", "-I", "128"}, nil},
		{"ext4-metabg", []string{"-b", "1024", "-O", "meta_bg,^resize_inode"}, nil},
		{"ext4-bigalloc", []string{"-b", "4096", "-O", "bigalloc", "-C", "16384"}, nil},
		{"hash-tea", []string{"-b", "1024"}, rehash("tea", "")},
		{"hash-legacy", []string{"-b", "1024"}, rehash("legacy", "")},
		{"hash-half_md4-unsigned", []string{"-b", "1024"}, rehash("half_md4", "2")},
		{"hash-tea-unsigned", []string{"-b", "2048"}, rehash("tea", "2")},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := scratch(t)
			src := src
			if v.name == "ext2-1k" {
				// Past 64 MiB + 268 KiB, 1 KiB blocks need the triple
				// indirect block.
				src = filepath.Join(dir, "src")
				buildSource(t, src, srcOpts{share: []string{"X11/locale"}, bigDir: 500, bigXattr: 700})
				writeAt(t, filepath.Join(src, "sparse-far"), 70<<20, 1<<20, 66<<20)
			}
			img := mkfs(t, dir, src, 160, v.args...)
			if v.after != nil {
				v.after(t, img)
			}
			fsys := openImage(t, img)
			checkInfo(t, img, fsys)
			compareWithKernel(t, img, fsys)
			if w := fsys.Info().Warnings; len(w) != 0 {
				t.Errorf("warnings on a clean volume: %q", w)
			}
		})
	}
}

// rehash sets the volume's default htree hash (and its signedness flags,
// 1 signed or 2 unsigned) and has e2fsck -D rebuild every directory index
// with it.
func rehash(alg, flags string) func(t *testing.T, img string) {
	return func(t *testing.T, img string) {
		run(t, "tune2fs", "-E", "hash_alg="+alg, img)
		if flags != "" {
			debugfs(t, img, true, "ssv flags "+flags)
		}
		out, err := runErr("e2fsck", "-fyD", img)
		if err != nil && !strings.Contains(err.Error(), "exit status 1") {
			t.Fatalf("e2fsck: %v\n%s", err, out)
		}
		if !strings.Contains(run(t, "dumpe2fs", "-h", img), "Default directory hash:   "+alg) {
			t.Fatalf("hash_alg=%s not set", alg)
		}
	}
}

// writeAt makes a sparse file of size bytes with 5000 bytes at each offset.
func writeAt(t testing.TB, path string, size int64, at ...int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for i, off := range at {
		if _, err := f.WriteAt(bytes.Repeat([]byte{byte('A' + i)}, 5000), off); err != nil {
			t.Fatal(err)
		}
	}
}

func runErr(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestRealFixtures reads the ext2 image dfvfs ships (as qcow2, VHD and
// VMDK) and compares it with the kernel's mount of qemu-img's raw copy.
func TestRealFixtures(t *testing.T) {
	root := filepath.Join(testutil.RealFixtures(t), "log2timeline-dfvfs")
	for _, name := range []string{"ext2.qcow2", "ext2.vhd", "ext2.vmdk"} {
		t.Run(name, func(t *testing.T) {
			raw := testutil.RawOracle(t, scratch(t), filepath.Join(root, name), "")
			fsys := openImage(t, raw)
			checkInfo(t, raw, fsys)
			if n := compareWithKernel(t, raw, fsys); n < 5 {
				t.Errorf("only %d paths", n)
			}
		})
	}
}

// TestBlockSize64K reads a volume of 64 KiB blocks, which this kernel
// cannot mount: debugfs's rdump is the oracle for bytes, modes and owners.
func TestBlockSize64K(t *testing.T) {
	dir := scratch(t)
	src := filepath.Join(dir, "src")
	buildSource(t, src, srcOpts{share: []string{"X11/locale"}, bigDir: 800, bigXattr: 3000})
	img := mkfs(t, dir, src, 256, "-b", "65536")
	fsys := openImage(t, img)
	checkInfo(t, img, fsys)
	out := filepath.Join(dir, "rdump")
	os.Mkdir(out, 0o755)
	debugfs(t, img, false, "rdump / "+out)
	compareWithDump(t, fsys, out)
}

// compareWithDump compares what debugfs rdump wrote (bytes, symlink
// targets, modes and owners of files and directories; it writes no device
// nodes or FIFOs, gives hard links separate copies, does not chown
// symlinks and stores times as unsigned 32-bit seconds) with a walk of
// fsys. Times are compared with the kernel in the other tests.
func compareWithDump(t *testing.T, fsys *FS, out string) {
	got := guestfstest.Walk(t, fsys, 1000000)
	want := guestfstest.Tree(t, out)
	special, links := map[string]bool{"": true}, map[string]bool{}
	for p, n := range got {
		switch n.Attr.Mode & guestfs.TypeMask {
		case guestfs.TypeRegular, guestfs.TypeDir:
		case guestfs.TypeSymlink:
			links[p] = true
		default:
			special[p] = true
		}
	}
	guestfstest.Equal(t, got, want, guestfstest.Compare{Owner: true, Perm: true,
		Skip: func(p string) bool { return special[p] || links[p] }})
	guestfstest.Equal(t, got, want, guestfstest.Compare{Skip: func(p string) bool { return special[p] }})
	t.Logf("%d paths compared with debugfs rdump, %d htree directories", len(want), checkIndexes(t, fsys, got))
}
