package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs"
)

// boundedWalk reads a volume as the mount would, within limits (entries,
// bytes per file), visiting each directory once: what the fuzz targets
// and the hostile tests run. Errors are expected on damaged volumes; only
// panics and hangs are failures.
func boundedWalk(fsys guestfs.FS, maxEntries int, maxRead int64) {
	fsys.Info()
	seen := map[uint64]bool{}
	entries := 0
	buf := make([]byte, 64<<10)
	var walk func(ino uint64, depth int)
	walk = func(ino uint64, depth int) {
		a, err := fsys.Stat(ino)
		if err != nil {
			return
		}
		fsys.Xattrs(ino)
		switch a.Mode & guestfs.TypeMask {
		case guestfs.TypeRegular:
			f, err := fsys.Open(ino)
			if err != nil {
				return
			}
			for off := int64(0); off < f.Size() && off < maxRead; off += int64(len(buf)) {
				if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
					break
				}
			}
			if s, ok := f.(guestfs.Sparse); ok {
				s.NextData(0)
				s.NextHole(0)
			}
		case guestfs.TypeSymlink:
			fsys.Readlink(ino)
		case guestfs.TypeDir:
			if seen[ino] || depth > 64 {
				return
			}
			seen[ino] = true
			var names []guestfs.DirEntry
			fsys.ReadDir(ino, func(e guestfs.DirEntry) error {
				entries++
				if entries > maxEntries {
					return io.EOF
				}
				names = append(names, e)
				return nil
			})
			fsys.Lookup(ino, "no such name")
			for _, e := range names {
				fsys.Lookup(ino, e.Name)
				walk(e.Ino, depth+1)
			}
		}
	}
	walk(fsys.Root(), 0)
}

// fuzzSeeds makes small real images (128 KiB): extents with checksums,
// without checksums (so that mutations get past them), ext2 block maps,
// inline data; each with an htree directory, a sparse file, symlinks and
// an xattr. They are made the same in every fuzz worker (fixed UUID,
// hash seed and times), so that a crasher found against them reproduces.
func fuzzSeeds(t testing.TB) [][]byte {
	// Removed here, not at cleanup: fuzz workers are killed, not ended.
	dir := scratch(t)
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	write(t, filepath.Join(src, "file"), bytes.Repeat([]byte("data"), 1500))
	write(t, filepath.Join(src, "tiny"), []byte("inline"))
	writeAt(t, filepath.Join(src, "sparse"), 40<<10, 0, 30<<10)
	// An htree directory of hard links (64 inodes would not hold files).
	os.MkdirAll(filepath.Join(src, "dir"), 0o755)
	for i := 0; i < 100; i++ {
		if err := os.Link(filepath.Join(src, "tiny"), filepath.Join(src, "dir", "entry-"+strings.Repeat("n", i%20)+string(rune('a'+i%26))+string(rune('a'+i/26)))); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("file", filepath.Join(src, "link"))
	os.Symlink(strings.Repeat("t/", 50), filepath.Join(src, "longlink"))
	run(t, "setfattr", "-n", "user.a", "-v", "value", filepath.Join(src, "file"))
	run(t, "find", src, "-exec", "touch", "-h", "-d", "2020-01-02 03:04:05.6", "{}", "+")
	var seeds [][]byte
	for _, args := range [][]string{
		{"-b", "1024", "-O", "^has_journal,^metadata_csum,^resize_inode"},
		{"-b", "1024", "-O", "^has_journal,^resize_inode"},
		{"-t", "ext2", "-b", "1024", "-O", "^resize_inode"},
		{"-b", "1024", "-O", "^has_journal,^resize_inode,inline_data,^metadata_csum"},
	} {
		img := filepath.Join(dir, "seed.img")
		os.Remove(img)
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Truncate(img, 128<<10)
		a := append([]string{"-q", "-F", "-N", "64", "-U", "2b7ee2a6-7d34-4f4c-9b3a-4f3a3a0e1f01",
			"-E", "hash_seed=6b1c0b38-4f5e-4b7a-8f0e-2c6c1d7e9a11", "-d", src}, args...)
		for _, cmd := range [][]string{append([]string{"mkfs.ext4"}, append(a, img)...), {"e2fsck", "-fyD", img}} {
			c := exec.Command(cmd[0], cmd[1:]...)
			c.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1600000000")
			if out, err := c.CombinedOutput(); err != nil && (cmd[0] != "e2fsck" || !strings.Contains(err.Error(), "exit status 1")) {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
		}
		// mkfs copies the sources' ctimes and atimes, which no one can
		// set and reading changes: fix them.
		var cmds strings.Builder
		for i := 1; i <= 64; i++ {
			fmt.Fprintf(&cmds, "sif <%d> ctime 20200101000000\nsif <%d> atime 20200101000000\n", i, i)
		}
		script := filepath.Join(dir, "fix-times")
		write(t, script, []byte(cmds.String()))
		c := exec.Command("debugfs", "-w", "-f", script, img)
		c.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1600000000")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("debugfs: %v\n%s", err, out)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		// And the superblock's mount, write and check times, which
		// the tools set from the clock.
		sb := b[1024:2048]
		for _, off := range []int{0x2C, 0x30, 0x40} {
			binary.LittleEndian.PutUint32(sb[off:], 1600000000)
		}
		if binary.LittleEndian.Uint32(sb[0x64:])&roCompatMetadataCsum != 0 {
			binary.LittleEndian.PutUint32(sb[0x3FC:], crc32c(^uint32(0), sb[:0x3FC]))
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzOpen opens mutated real images and walks them within bounds: no
// panic, no hang, whatever the bytes. The input is a seed number and a
// list of patches (a 3-byte offset and a byte each) rather than a whole
// image: Go's fuzzer minimizes every new input, which for a 128 KiB image
// takes its full minute (31 runs in 60 s, measured), while patches keep
// it cheap (4,000 runs a second) and the mutations on real metadata.
func FuzzOpen(f *testing.F) {
	seeds := fuzzSeeds(f)
	for i := range seeds {
		f.Add(uint8(i), []byte{})
		// One patch in the group descriptors, one in the root inode.
		f.Add(uint8(i), []byte{0x08, 0x08, 0x00, 0xff, 0x00, 0x15, 0x00, 0x07})
	}
	f.Fuzz(func(t *testing.T, which uint8, patches []byte) {
		img := append([]byte(nil), seeds[int(which)%len(seeds)]...)
		for p := patches; len(p) >= 4; p = p[4:] {
			off := int(p[0]) | int(p[1])<<8 | int(p[2])<<16
			img[off%len(img)] = p[3]
		}
		fsys, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		boundedWalk(fsys, 5000, 1<<20)
	})
}

// TestFuzzSeeds walks the seeds unmutated (each must open and read
// whole) and checks they are made alike each time, as FuzzPatch needs.
func TestFuzzSeeds(t *testing.T) {
	a, b := fuzzSeeds(t), fuzzSeeds(t)
	for i, s := range a {
		if !bytes.Equal(s, b[i]) {
			for k := range s {
				if s[k] != b[i][k] {
					t.Logf("first difference at %d", k)
					break
				}
			}
			t.Errorf("seed %d differs between two builds", i)
		}
		fsys, err := Open(bytes.NewReader(s), int64(len(s)))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		got := walkCount(t, fsys)
		if got < 100 {
			t.Errorf("seed %d: %d entries", i, got)
		}
	}
}

func walkCount(t *testing.T, fsys guestfs.FS) int {
	n := 0
	var walk func(ino uint64)
	walk = func(ino uint64) {
		if err := fsys.ReadDir(ino, func(e guestfs.DirEntry) error {
			n++
			if e.Type == guestfs.TypeDir {
				walk(e.Ino)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	walk(fsys.Root())
	return n
}
