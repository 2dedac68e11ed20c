package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/ovfmount/ovfmount/internal/testutil"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
)

// TestHtreeTwoLevels makes a directory whose index needs an interior
// level (1 KiB blocks, long names) and looks every name up through it.
func TestHtreeTwoLevels(t *testing.T) {
	dir := scratch(t)
	src := filepath.Join(dir, "src")
	for i := 0; i < 700; i++ {
		write(t, filepath.Join(src, "big", fmt.Sprintf("%s-%05d", strings.Repeat("long-name-", 19), i)), nil)
	}
	img := mkfs(t, dir, src, 32, "-b", "1024")
	if out := debugfs(t, img, false, "htree /big"); !strings.Contains(out, "Indirect levels: 1") {
		t.Fatalf("no two-level index:\n%.500s", out)
	}
	fsys := openImage(t, img)
	compareWithKernel(t, img, fsys)
}

// TestLargeFile reads files past 4 GiB (i_size_high), extent-mapped and
// block-mapped, at their data and in their holes, against the kernel.
func TestLargeFile(t *testing.T) {
	for name, args := range map[string][]string{"extents": {"-b", "4096"}, "blockmap": {"-t", "ext3", "-b", "4096"}} {
		t.Run(name, func(t *testing.T) {
			dir := scratch(t)
			src := filepath.Join(dir, "src")
			os.MkdirAll(src, 0o755)
			offs := []int64{0, 3 << 30, 4<<30 + 12345, 5<<30 - 5000}
			writeAt(t, filepath.Join(src, "large"), 5<<30, offs...)
			img := mkfs(t, dir, src, 32, args...)
			fsys := openImage(t, img)
			mnt := testutil.KernelMount(t, img, "ext4", "noload")
			e, err := fsys.Lookup(fsys.Root(), "large")
			if err != nil {
				t.Fatal(err)
			}
			f, err := fsys.Open(e.Ino)
			if err != nil {
				t.Fatal(err)
			}
			k, err := os.Open(filepath.Join(mnt, "large"))
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			st, _ := k.Stat()
			a, _ := fsys.Stat(e.Ino)
			if a.Size != st.Size() || f.Size() != st.Size() || a.Blocks != st.Sys().(*syscall.Stat_t).Blocks*512 {
				t.Errorf("size %d, blocks %d; kernel %d, %d", a.Size, a.Blocks, st.Size(), st.Sys().(*syscall.Stat_t).Blocks*512)
			}
			ks, err := kernelSegments(filepath.Join(mnt, "large"))
			if err != nil {
				t.Fatal(err)
			}
			gs, err := ourSegments(f.(guestfs.Sparse), a.Size)
			if err != nil || fmt.Sprint(gs) != fmt.Sprint(ks) {
				t.Errorf("data segments %v, %v; kernel %v", gs, err, ks)
			}
			for _, off := range append(offs, 1<<30, 4<<30, 5<<30-64<<10) {
				got, want := make([]byte, 64<<10), make([]byte, 64<<10)
				gn, gerr := f.ReadAt(got, off)
				wn, werr := k.ReadAt(want, off)
				if gn != wn || (gerr == nil) != (werr == nil) || !bytes.Equal(got[:gn], want[:wn]) {
					t.Errorf("at %d: read %d, %v; kernel %d, %v; same bytes: %v", off, gn, gerr, wn, werr, bytes.Equal(got[:gn], want[:wn]))
				}
			}
		})
	}
}

// TestEAInode reads an attribute value too large for a block, which
// ea_inode keeps in an inode of its own.
func TestEAInode(t *testing.T) {
	dir := scratch(t)
	src := filepath.Join(dir, "src")
	write(t, filepath.Join(src, "f"), []byte("x"))
	run(t, "setfattr", "-n", "user.huge", "-v", strings.Repeat("h", 20000), filepath.Join(src, "f"))
	img := mkfs(t, dir, src, 16, "-b", "4096", "-O", "ea_inode")
	fsys := openImage(t, img)
	if n := compareWithKernel(t, img, fsys); n < 3 {
		t.Errorf("%d paths", n)
	}
	e, _ := fsys.Lookup(rootIno, "f")
	xs, err := fsys.Xattrs(e.Ino)
	if err != nil || len(xs) != 1 || len(xs[0].Value) != 20000 {
		t.Errorf("xattrs %d, %v", len(xs), err)
	}
}

// TestFeatures checks how the reader treats what the superblock and the
// inodes announce: a journal that needs recovery, an unknown
// incompatible feature, an encrypted file.
func TestFeatures(t *testing.T) {
	dir := scratch(t)
	src := filepath.Join(dir, "src")
	write(t, filepath.Join(src, "secret"), []byte("ciphertext really"))
	write(t, filepath.Join(src, "plain"), []byte("plain"))
	img := mkfs(t, dir, src, 8, "-b", "1024", "-O", "encrypt")

	setFlags(t, img, "/secret", 0x800)
	fsys := openImage(t, img)
	e, err := fsys.Lookup(fsys.Root(), "secret")
	if err != nil {
		t.Fatal(err)
	}
	a, err := fsys.Stat(e.Ino)
	if err != nil || a.Flags != guestfs.FlagEncrypted {
		t.Fatalf("encrypted file: flags %v, %v", a.Flags, err)
	}
	if _, err := fsys.Open(e.Ino); !errors.Is(err, guestfs.ErrUnsupported) {
		t.Fatalf("open of an encrypted file: %v", err)
	}

	// Checksums: a changed byte in an inode, in a directory block.
	corrupt := func(what string, off int64) {
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var b [1]byte
		f.ReadAt(b[:], off)
		b[0] ^= 0x01
		f.WriteAt(b[:], off)
	}
	m := regexp.MustCompile(`located at block (\d+), offset (0x[0-9a-f]+)`).FindStringSubmatch(debugfs(t, img, false, "imap /plain"))
	if m == nil {
		t.Fatal("debugfs imap /plain: no location")
	}
	blk, _ := strconv.ParseInt(m[1], 10, 64)
	off, _ := strconv.ParseInt(m[2], 0, 64)
	corrupt("inode", blk*1024+off+0x0) // a permission bit
	e, err = openImage(t, img).Lookup(rootIno, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openImage(t, img).Stat(e.Ino); !errors.Is(err, guestfs.ErrCorrupt) {
		t.Errorf("inode with a bad checksum: %v", err)
	}
	corrupt("inode", blk*1024+off+0x0)
	m = regexp.MustCompile(`\(0\):(\d+)`).FindStringSubmatch(debugfs(t, img, false, "stat /"))
	if m == nil {
		t.Fatal("debugfs stat /: no block 0")
	}
	blk, _ = strconv.ParseInt(m[1], 10, 64)
	corrupt("directory", blk*1024+30) // in the name of an entry
	if err := openImage(t, img).ReadDir(rootIno, func(guestfs.DirEntry) error { return nil }); !errors.Is(err, guestfs.ErrCorrupt) {
		t.Errorf("directory block with a bad checksum: %v", err)
	}
	corrupt("directory", blk*1024+30)

	debugfs(t, img, true, "feature needs_recovery")
	fsys = openImage(t, img)
	if w := strings.Join(fsys.Info().Warnings, "\n"); !strings.Contains(w, "needs recovery") {
		t.Fatalf("needs_recovery: warnings %q", w)
	}
	debugfs(t, img, true, "feature -needs_recovery")

	// An incompatible feature bit nobody knows, and one we know but do
	// not read: refused, named. (On a volume without checksums, so that
	// the bits can be set by hand: debugfs will not open it then.)
	img = mkfs(t, dir, src, 8, "-b", "1024", "-O", "^metadata_csum")
	incompat := readSuperblockField(t, img, 0x60)
	for bit, name := range map[uint32]string{0x100000: "0x100000", incompatCompression: "compression", incompatDirData: "dirdata"} {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], incompat|bit)
		patch(t, img, 1024+0x60, b[:])
		f, _ := os.Open(img)
		st, _ := f.Stat()
		_, err := Open(f, st.Size())
		f.Close()
		if !errors.Is(err, guestfs.ErrUnsupported) || !strings.Contains(err.Error(), name) {
			t.Errorf("incompatible feature %s: %v", name, err)
		}
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], incompat)
	patch(t, img, 1024+0x60, b[:])
	// A volume cut short.
	f, _ := os.Open(img)
	defer f.Close()
	st, _ := f.Stat()
	if _, err := Open(f, st.Size()/2); !errors.Is(err, guestfs.ErrCorrupt) {
		t.Fatalf("truncated volume: %v", err)
	}
}

func readSuperblockField(t *testing.T, img string, off int64) uint32 {
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], 1024+off); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[:])
}

var debugfsETB = regexp.MustCompile(`\(ETB0\):(\d+)`)

// patch overwrites bytes of img at off.
func patch(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// within fails the test if fn takes longer than a hang would allow.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		panic(what + ": still running after 20 s")
	}
}

// TestHostile damages real images the ways an attacker would and checks
// that the reader answers with errors (or, for a cycle, terminates).
func TestHostile(t *testing.T) {
	dir := scratch(t)
	src := filepath.Join(dir, "src")
	buildSource(t, src, srcOpts{bigDir: 600, bigXattr: 500})
	// A file fragmented enough for an extent tree of depth 1.
	frag := make([]int64, 12)
	for i := range frag {
		frag[i] = int64(i) * 64 << 10
	}
	writeAt(t, filepath.Join(src, "fragmented"), 1<<20, frag...)
	os.MkdirAll(filepath.Join(src, "a", "b"), 0o755)
	img := mkfs(t, dir, src, 32, "-b", "1024", "-O", "^metadata_csum")
	const bs = 1024

	// A directory entry pointing back at an ancestor: a cycle.
	debugfs(t, img, true, "link /a /a/b/up")
	// An extent tree block whose index points at itself, claiming the
	// depth its parent has.
	m := debugfsETB.FindStringSubmatch(debugfs(t, img, false, "stat /fragmented"))
	if m == nil {
		t.Fatal("no extent tree block for /fragmented")
	}
	etb, _ := strconv.ParseInt(m[1], 10, 64)
	node := make([]byte, 24)
	binary.LittleEndian.PutUint16(node[0:], extentMagic)
	binary.LittleEndian.PutUint16(node[2:], 1)
	binary.LittleEndian.PutUint16(node[4:], (bs-12)/12)
	binary.LittleEndian.PutUint16(node[6:], 1)
	binary.LittleEndian.PutUint32(node[16:], uint32(etb))
	patch(t, img, etb*bs, node)
	// An extent pointing past the end of the volume.
	debugfs(t, img, true, "sif /medium block[5] 0x00fffff0")
	// A huge size over a small file, and one that does not fit an int64.
	debugfs(t, img, true, "sif /small size 0x4000000000000")
	debugfs(t, img, true, "sif /sparse size 0x8000000000000000")
	// An htree root whose limit is wrong: Lookup must scan instead.
	m = regexp.MustCompile(`\(0(?:-\d+)?\):(\d+)`).FindStringSubmatch(debugfs(t, img, false, "stat /big"))
	if m == nil {
		t.Fatal("no block 0 for /big")
	}
	root, _ := strconv.ParseInt(m[1], 10, 64)
	patch(t, img, root*bs+0x20, []byte{0x07, 0x00})

	fsys := openImage(t, img)
	lookup := func(path string) uint64 {
		ino := fsys.Root()
		for _, n := range strings.Split(path, "/") {
			e, err := fsys.Lookup(ino, n)
			if err != nil {
				t.Fatalf("lookup %s: %v", path, err)
			}
			ino = e.Ino
		}
		return ino
	}
	within(t, "hostile reads", func() {
		if up := lookup("a/b/up"); up != lookup("a") {
			t.Errorf("a/b/up is inode %d, a is %d", up, lookup("a"))
		}
		f, err := fsys.Open(lookup("fragmented"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadAt(make([]byte, 4096), 0); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("extent loop: read gave %v", err)
		}
		if _, _, err := f.(guestfs.Sparse).NextData(0); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("extent loop: NextData gave %v", err)
		}
		f, err = fsys.Open(lookup("medium"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, io.NewSectionReader(f, 0, f.Size())); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("extent past the end: read gave %v", err)
		}
		f, err = fsys.Open(lookup("small"))
		if err != nil {
			t.Fatal(err)
		}
		if f.Size() != 0x4000000000000 {
			t.Errorf("huge size: %d", f.Size())
		}
		b := make([]byte, 1<<20)
		if n, err := f.ReadAt(b, f.Size()-int64(len(b))); n != len(b) || err != nil || strings.Trim(string(b), "\x00") != "" {
			t.Errorf("read at the end of a huge file: %d, %v", n, err)
		}
		if _, ok, err := f.(guestfs.Sparse).NextData(4096); ok || err != nil {
			t.Errorf("NextData past the data of a huge file: %v, %v", ok, err)
		}
		if _, err := fsys.Stat(lookup("sparse")); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("negative size: %v", err)
		}
		// The broken index: every name still found, with a warning.
		big := lookup("big")
		n := 0
		if err := fsys.ReadDir(big, func(e guestfs.DirEntry) error {
			n++
			got, err := fsys.Lookup(big, e.Name)
			if err != nil || got.Ino != e.Ino {
				return fmt.Errorf("lookup %q: %v", e.Name, err)
			}
			return nil
		}); err != nil || n != 600 {
			t.Errorf("big: %d entries, %v", n, err)
		}
		if w := strings.Join(fsys.Info().Warnings, "\n"); !strings.Contains(w, "htree") {
			t.Errorf("no warning for the broken index: %q", w)
		}
		// A bounded walk of the whole volume terminates.
		boundedWalk(fsys, 100000, 1<<20)
	})
}
