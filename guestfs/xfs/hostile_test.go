package xfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestHostile damages a real image in the ways the reader must survive,
// each with xfs_db's expert mode (which writes named fields and, unless
// told otherwise, recomputes the CRCs, so that the damage reaches the
// structure checks and not only the CRC check): a bmbt block that points
// to itself, leaves whose sibling link loops, an extent past the volume,
// a directory that contains itself, huge sizes, a dabtree node that points
// to itself, attribute leaves in a loop, a bad CRC, an unknown feature.
// Each must give an error (or, for the directory, a plain entry) within
// seconds, never a hang or a panic.
func TestHostile(t *testing.T) {
	t.Parallel()
	db := testutil.RequireTool(t, "xfs_db")
	testutil.RequireTool(t, "xfs_io")
	base := mkfs(t, 64)
	mnt, umount := mountRW(t, base)
	sh(t, mnt, `
mkdir d && touch d/a d/b
echo hello > f
ln -s "$(printf 'link/%.0s' $(seq 1 60))" sl
cmds=(); for i in $(seq 0 2 600); do cmds+=(-c "pwrite -q $((i*4096)) 4096"); done; xfs_io -f "${cmds[@]}" frag
mkdir bd && (cd bd && seq 1 3000 | sed 's/^/entry_/' | xargs touch)
echo x > at
`)
	for i := 1; i <= 300; i++ {
		if err := unix.Setxattr(filepath.Join(mnt, "at"), fmt.Sprintf("user.attribute_%d", i), []byte(fmt.Sprintf("value_%d", i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	umount()

	xdb := func(img string, args ...string) string {
		t.Helper()
		out, err := exec.Command(db, append(args, img)...).CombinedOutput()
		if err != nil {
			t.Fatalf("xfs_db %q: %v: %s", args, err, out)
		}
		return string(out)
	}
	field := func(out, re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%q not in xfs_db's output:\n%s", re, out)
		}
		return m[1]
	}
	ino := func(path string) string {
		return inoOf(t, base, path)
	}
	ptrs := xdb(base, "-r", "-c", "path /frag", "-c", "print u3.bmbt.ptrs")
	p1 := field(ptrs, `1:(\d+)`)
	dIno, fIno, slIno, fragIno, bdIno, atIno := ino("/d"), ino("/f"), ino("/sl"), ino("/frag"), ino("/bd"), ino("/at")
	leafDB := "8388608" // the dabtree root of a 4 KiB-block directory: 32 GiB / 4 KiB

	var n uint64
	num := func(s string) uint64 { fmt.Sscan(s, &n); return n }
	readAll := func(fsys *FS, ino string) error {
		f, err := fsys.Open(num(ino))
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, io.NewSectionReader(f, 0, f.Size()))
		return err
	}

	for _, tc := range []struct {
		name   string
		damage []string // xfs_db -x commands
		check  func(t *testing.T, fsys *FS) error
		want   error // nil: check must succeed
	}{
		{"bmbt block points to itself", []string{"fsblock " + p1, "type bmapbtd", "write -d level 1", "write -d ptrs[1] " + p1},
			func(t *testing.T, fsys *FS) error { return readAll(fsys, fragIno) }, guestfs.ErrCorrupt},
		{"bmbt sibling link loops", []string{"fsblock " + p1, "type bmapbtd", "write -d numrecs 1", "write -d rightsib " + p1},
			func(t *testing.T, fsys *FS) error { return readAll(fsys, fragIno) }, guestfs.ErrCorrupt},
		{"bmbt pointer past the volume", []string{"path /frag", "write -d u3.bmbt.ptrs[1] 4000000000"},
			func(t *testing.T, fsys *FS) error { return readAll(fsys, fragIno) }, guestfs.ErrCorrupt},
		{"extent past the volume", []string{"path /f", "write -d u3.bmx[0].startblock 4000000000"},
			func(t *testing.T, fsys *FS) error { _, err := fsys.Stat(num(fIno)); return err }, guestfs.ErrCorrupt},
		{"directory contains itself", []string{"path /d", "write u3.sfdir3.list[0].inumber.i4 " + dIno},
			func(t *testing.T, fsys *FS) error {
				e, err := fsys.Lookup(num(dIno), "a")
				if err == nil && e.Ino != num(dIno) {
					t.Errorf("lookup: inode %d, want the directory's own %s", e.Ino, dIno)
				}
				return err
			}, nil},
		{"huge sparse size", []string{"path /f", "write core.size 4611686018427387904"},
			func(t *testing.T, fsys *FS) error {
				f, err := fsys.Open(num(fIno))
				if err != nil {
					return err
				}
				buf := make([]byte, 1<<20)
				if n, err := f.ReadAt(buf, f.Size()-int64(len(buf))/2); n != len(buf)/2 || err != io.EOF {
					t.Errorf("read at the end of a huge file: %d, %v", n, err)
				}
				if _, ok, err := f.(guestfs.Sparse).NextData(4096); ok || err != nil {
					t.Errorf("NextData past the only extent: %v, %v", ok, err)
				}
				return nil
			}, nil},
		{"the largest size", []string{"path /f", "write -d core.size 0x7fffffffffffffff"},
			func(t *testing.T, fsys *FS) error {
				f, err := fsys.Open(num(fIno))
				if err != nil {
					return err
				}
				buf := make([]byte, 4096)
				if n, err := f.ReadAt(buf, f.Size()-100); n != 100 || err != io.EOF {
					t.Errorf("read at the end: %d, %v", n, err)
				}
				if n, err := f.ReadAt(buf, 0); n != len(buf) || err != nil || string(buf[:6]) != "hello\n" {
					t.Errorf("read at the start: %d, %v, %q", n, err, buf[:6])
				}
				return nil
			}, nil},
		{"symlink of 5000 bytes", []string{"path /sl", "write core.size 5000"},
			func(t *testing.T, fsys *FS) error { _, err := fsys.Readlink(num(slIno)); return err }, guestfs.ErrCorrupt},
		{"dabtree node points to itself", []string{"path /bd", "dblock " + leafDB, "write -d nhdr.count 1",
			"write -d nbtree[0].hashval 4294967295", "write -d nbtree[0].before " + leafDB},
			func(t *testing.T, fsys *FS) error { _, err := fsys.Lookup(num(bdIno), "entry_7"); return err }, guestfs.ErrCorrupt},
		{"attribute leaves loop", []string{"path /at", "ablock 1", "write -d hdr.info.hdr.forw 1"},
			func(t *testing.T, fsys *FS) error { _, err := fsys.Xattrs(num(atIno)); return err }, guestfs.ErrCorrupt},
		{"inode CRC mismatch", []string{"path /f", "write -c core.uid 5"},
			func(t *testing.T, fsys *FS) error { _, err := fsys.Stat(num(fIno)); return err }, guestfs.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(tempDir(t), "damaged.img")
			sh(t, "/", "cp --sparse=always "+base+" "+img)
			args := []string{"-x"}
			for _, c := range tc.damage {
				args = append(args, "-c", c)
			}
			xdb(img, args...)
			fsys := openImage(t, img)
			done := make(chan error, 1)
			go func() { done <- tc.check(t, fsys) }()
			select {
			case err := <-done:
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				t.Logf("%v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("no answer in 20 s: a hang")
			}
		})
	}

	t.Run("unknown incompatible feature", func(t *testing.T) {
		img := filepath.Join(tempDir(t), "damaged.img")
		sh(t, "/", "cp --sparse=always "+base+" "+img)
		xdb(img, "-x", "-c", "sb 0", "-c", "write -d features_incompat 0x8000000b")
		fh, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		st, _ := fh.Stat()
		_, err = Open(fh, st.Size())
		if !errors.Is(err, guestfs.ErrUnsupported) || !strings.Contains(err.Error(), "0x80000000") {
			t.Fatalf("Open: %v, want ErrUnsupported naming the feature", err)
		}
		t.Log(err)
	})
}

// inoOf is a path's inode number as xfs_db's ls shows it in its parent.
func inoOf(t testing.TB, img, path string) string {
	t.Helper()
	dir, name := filepath.Split(path)
	out, err := exec.Command("xfs_db", "-r", "-c", "path "+dir, "-c", "ls", img).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_db ls %s: %v: %s", dir, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[len(f)-2] == name {
			return f[1]
		}
	}
	t.Fatalf("%s not in xfs_db's listing of %s:\n%s", name, dir, out)
	return ""
}
