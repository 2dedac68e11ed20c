package iso9660

import (
	"bytes"
	"os"
	"testing"
)

// FuzzOpen opens mutated ISO 9660 volumes and walks them: it must never
// panic, hang or allocate without bound. The seeds are small images
// xorriso makes at test time: Rock Ridge with Joliet (continuation areas,
// a symlink), relocated deep directories, Joliet alone, and plain ISO
// 9660.
func FuzzOpen(f *testing.F) {
	src := smallTree(f)
	for _, args := range [][]string{
		{"-no-pad", "-R", "-J"},
		{"-no-pad", "-R", "-rr_reloc_dir", "rr_moved"},
		{"-no-pad", "--norock", "-J"},
		{"-no-pad", "--norock"},
	} {
		b, err := os.ReadFile(makeISO(f, src, args...))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
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
