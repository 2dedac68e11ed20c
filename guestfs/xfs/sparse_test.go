package xfs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
)

// checkSparse compares NextData and NextHole with the kernel's SEEK_DATA
// and SEEK_HOLE for every regular file under dir: the whole alternation
// of data and holes, from offset 0 to the end. Unwritten extents are
// holes to both, as long as the kernel has cached none of their pages.
func checkSparse(t *testing.T, fsys *FS, got map[string]*guestfstest.Node, host, dir string) {
	t.Helper()
	n := 0
	for p, node := range got {
		if filepath.Dir(p) != dir || node.Attr.Mode&guestfs.TypeMask != guestfs.TypeRegular {
			continue
		}
		n++
		fh, err := os.Open(filepath.Join(host, p))
		if err != nil {
			t.Fatal(err)
		}
		f, err := fsys.Open(node.Attr.Ino)
		if err != nil {
			t.Fatal(err)
		}
		sp := f.(guestfs.Sparse)
		for off, steps := int64(0), 0; off < node.Attr.Size && steps < 10000; steps++ {
			want, err := unix.Seek(int(fh.Fd()), off, unix.SEEK_DATA)
			g, ok, gerr := sp.NextData(off)
			if gerr != nil {
				t.Fatalf("%s: NextData(%d): %v", p, off, gerr)
			}
			if err != nil { // ENXIO: no data after off
				if ok {
					t.Errorf("%s: NextData(%d) = %d, the kernel finds no data", p, off, g)
				}
				break
			}
			if !ok || g != want {
				t.Errorf("%s: NextData(%d) = %d %v, want %d", p, off, g, ok, want)
				break
			}
			wantHole, err := unix.Seek(int(fh.Fd()), want, unix.SEEK_HOLE)
			if err != nil {
				t.Fatal(err)
			}
			gh, err := sp.NextHole(want)
			if err != nil || gh != wantHole {
				t.Errorf("%s: NextHole(%d) = %d %v, want %d", p, want, gh, err, wantHole)
				break
			}
			off = wantHole
		}
		fh.Close()
	}
	if n < 4 {
		t.Errorf("only %d files under %s", n, dir)
	}
}
