package ext4

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs"
)

// boundedWalk reads a volume as the mount would, within limits (entries,
// bytes per file), visiting each directory once: what the fuzz target and
// the hostile tests run. Errors are expected on damaged volumes; only
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

// fuzzSeeds makes small real images: extents with checksums, without
// checksums (so mutations get past them), ext2 block maps, inline data,
// and an htree directory.
func fuzzSeeds(t testing.TB) [][]byte {
	dir := scratch(t)
	src := filepath.Join(dir, "src")
	write(t, filepath.Join(src, "file"), bytes.Repeat([]byte("data"), 3000))
	write(t, filepath.Join(src, "tiny"), []byte("inline"))
	writeAt(t, filepath.Join(src, "sparse"), 300<<10, 0, 200<<10)
	for i := 0; i < 120; i++ {
		write(t, filepath.Join(src, "dir", "entry-with-a-long-name-"+string(rune('a'+i%26))+string(rune('a'+i/26))), nil)
	}
	os.Symlink("file", filepath.Join(src, "link"))
	os.Symlink(string(bytes.Repeat([]byte("t/"), 50)), filepath.Join(src, "longlink"))
	run(t, "setfattr", "-n", "user.a", "-v", "value", filepath.Join(src, "file"))
	var seeds [][]byte
	for _, args := range [][]string{
		{"-b", "1024", "-O", "^has_journal,^metadata_csum", "-N", "200"},
		{"-b", "1024", "-O", "^has_journal", "-N", "200"},
		{"-t", "ext2", "-b", "1024", "-N", "200"},
		{"-b", "1024", "-O", "^has_journal,inline_data,^metadata_csum", "-N", "200", "-I", "256"},
	} {
		img := mkfs(t, dir, src, 1, args...)
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzOpen opens mutated real images and walks them within bounds: no
// panic, no hang, whatever the bytes.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		boundedWalk(fsys, 5000, 1<<20)
	})
}

// TestFuzzSeeds walks the seeds unmutated: each must open and read whole.
func TestFuzzSeeds(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		fsys, err := Open(bytes.NewReader(s), int64(len(s)))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		boundedWalk(fsys, 5000, 1<<20)
	}
}
