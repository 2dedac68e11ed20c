package fat

import (
	"bytes"
	"os"
	"testing"
)

// FuzzOpen opens mutated FAT volumes and walks them: it must never panic,
// hang or allocate without bound. The seeds are made by mkfs.vfat and
// mtools at test time: a whole small FAT12 volume, and the first 48 KiB of
// a FAT16 volume and 320 KiB of a FAT32 one (boot sector, FATs, root directory and the first
// files), so that mutations land on structures rather than on zeros.
func FuzzOpen(f *testing.F) {
	seed := func(kib, keep int, args ...string) {
		b, err := os.ReadFile(smallImage(f, kib, args...))
		if err != nil {
			f.Fatal(err)
		}
		if keep > 0 && keep < len(b) {
			b = b[:keep]
		}
		f.Add(b)
	}
	seed(64, 0, "-F", "12", "-S", "512", "-s", "1", "-f", "1", "-r", "64", "-R", "1")
	seed(2200, 48<<10, "-F", "16", "-S", "512", "-s", "1", "-f", "1", "-r", "32", "-R", "1")
	// FAT32 needs 65525 clusters: a FAT of 256 KiB precedes the root.
	seed(33<<10, 320<<10, "-F", "32", "-S", "512", "-s", "1", "-f", "1", "-R", "2")
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		Probe(r, int64(len(b)))
		fsys, err := Open(r, int64(len(b)))
		if err != nil {
			return
		}
		fsys.Info()
		boundedWalk(fsys, 2000)
	})
}
