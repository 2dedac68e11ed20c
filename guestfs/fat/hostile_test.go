package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// boundedWalk reads every reachable file of fsys as a client would, but
// tolerates every error and stops after limit steps or a directory seen
// twice: what the fuzz target and the hostile-volume tests run. It
// returns the number of entries visited.
func boundedWalk(fsys guestfs.FS, limit int) int {
	steps := 0
	seen := map[uint64]bool{}
	buf := make([]byte, 64<<10)
	var walk func(ino uint64, depth int)
	walk = func(ino uint64, depth int) {
		if steps >= limit || depth > 64 || seen[ino] {
			return
		}
		seen[ino] = true
		var ents []guestfs.DirEntry
		fsys.ReadDir(ino, func(e guestfs.DirEntry) error {
			steps++
			if steps >= limit {
				return io.EOF
			}
			ents = append(ents, e)
			return nil
		})
		for _, e := range ents {
			fsys.Lookup(ino, e.Name)
			a, err := fsys.Stat(e.Ino)
			if err != nil {
				continue
			}
			fsys.Xattrs(e.Ino)
			switch a.Mode & guestfs.TypeMask {
			case guestfs.TypeDir:
				walk(e.Ino, depth+1)
			case guestfs.TypeSymlink:
				fsys.Readlink(e.Ino)
			case guestfs.TypeRegular:
				if f, err := fsys.Open(e.Ino); err == nil {
					for off := int64(0); off < f.Size() && off < 1<<20; off += int64(len(buf)) {
						if _, err := f.ReadAt(buf, off); err != nil {
							break
						}
					}
				}
			}
		}
	}
	fsys.Stat(fsys.Root())
	walk(fsys.Root(), 0)
	fsys.Lookup(fsys.Root(), "NO SUCH NAME")
	return steps
}

// smallImage makes a FAT12 volume of a few files and directories with
// mtools: the starting point of the corruption tests and the fuzz seeds.
func smallImage(t testing.TB, sizeKiB int, mkfsArgs ...string) string {
	t.Helper()
	testutil.RequireTool(t, "mkfs.vfat")
	testutil.RequireTool(t, "mcopy")
	dir := t.TempDir()
	img := filepath.Join(dir, "small.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, int64(sizeKiB)<<10)
	sh(t, "mkfs.vfat", append(mkfsArgs, img)...)
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub dir", "inner"), 0o755)
	os.WriteFile(filepath.Join(src, "a long file name.txt"), bytes.Repeat([]byte("long name\n"), 300), 0o644)
	os.WriteFile(filepath.Join(src, "short.txt"), []byte("short\n"), 0o644)
	os.WriteFile(filepath.Join(src, "sub dir", "Ünïcødé.bin"), bytes.Repeat([]byte{1, 2, 3}, 700), 0o644)
	os.WriteFile(filepath.Join(src, "sub dir", "inner", "deep.txt"), []byte("deep\n"), 0o644)
	sh(t, "mcopy", "-s", "-m", "-i", img, filepath.Join(src, "a long file name.txt"), filepath.Join(src, "short.txt"), filepath.Join(src, "sub dir"), "::/")
	return img
}

// patched opens a copy of img after edit changed its bytes.
func patched(t *testing.T, img string, edit func(fs *FS, b []byte)) (*FS, []byte) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	edit(fsys, b)
	fsys, err = Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return fsys, b
}

func lookupPath(t *testing.T, fsys *FS, names ...string) guestfs.DirEntry {
	t.Helper()
	e := guestfs.DirEntry{Ino: fsys.Root()}
	for _, n := range names {
		var err error
		if e, err = fsys.Lookup(e.Ino, n); err != nil {
			t.Fatalf("lookup %q: %v", n, err)
		}
	}
	return e
}

// setFAT writes FAT12 entry c in every FAT copy.
func setFAT12(fs *FS, b []byte, c, v uint32) {
	for i := int64(0); i < 2; i++ {
		o := fs.fatOff + i*fs.fatBytes + int64(c) + int64(c)/2
		w := binary.LittleEndian.Uint16(b[o:])
		if c&1 != 0 {
			w = w&0x000F | uint16(v)<<4
		} else {
			w = w&0xF000 | uint16(v)&0xFFF
		}
		binary.LittleEndian.PutUint16(b[o:], w)
	}
}

func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
	}
}

func TestHostile(t *testing.T) {
	img := smallImage(t, 256, "-F", "12", "-s", "1")
	readAll := func(fsys *FS, ino uint64) error {
		f, err := fsys.Open(ino)
		if err != nil {
			return err
		}
		_, err = io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
		return err
	}
	t.Run("file chain loops", func(t *testing.T) {
		fsys, _ := patched(t, img, func(fs *FS, b []byte) {
			e, _ := fs.entryAt(lookupPath(t, fs, "a long file name.txt").Ino)
			c := fs.firstCluster(e)
			n, _, _ := fs.next(c)
			setFAT12(fs, b, n, c) // second cluster points back to the first
		})
		within(t, 5*time.Second, func() {
			if err := readAll(fsys, lookupPath(t, fsys, "a long file name.txt").Ino); !errors.Is(err, guestfs.ErrCorrupt) {
				t.Errorf("read: %v, want ErrCorrupt", err)
			}
		})
	})
	t.Run("FAT entry past the last cluster", func(t *testing.T) {
		fsys, _ := patched(t, img, func(fs *FS, b []byte) {
			e, _ := fs.entryAt(lookupPath(t, fs, "a long file name.txt").Ino)
			setFAT12(fs, b, fs.firstCluster(e), fs.maxCluster+3)
		})
		if err := readAll(fsys, lookupPath(t, fsys, "a long file name.txt").Ino); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("read: %v, want ErrCorrupt", err)
		}
	})
	t.Run("first cluster past the volume", func(t *testing.T) {
		fsys, _ := patched(t, img, func(fs *FS, b []byte) {
			ino := lookupPath(t, fs, "short.txt").Ino
			binary.LittleEndian.PutUint16(b[ino+26:], 0xFF0)
		})
		if err := readAll(fsys, lookupPath(t, fsys, "short.txt").Ino); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("read: %v, want ErrCorrupt", err)
		}
	})
	t.Run("directory chain loops", func(t *testing.T) {
		fsys, _ := patched(t, img, func(fs *FS, b []byte) {
			e, _ := fs.entryAt(lookupPath(t, fs, "sub dir").Ino)
			c := fs.firstCluster(e)
			setFAT12(fs, b, c, c)
		})
		within(t, 5*time.Second, func() {
			err := fsys.ReadDir(lookupPath(t, fsys, "sub dir").Ino, func(guestfs.DirEntry) error { return nil })
			if !errors.Is(err, guestfs.ErrCorrupt) {
				t.Errorf("readdir: %v, want ErrCorrupt", err)
			}
			boundedWalk(fsys, 10000)
		})
	})
	t.Run("directory cycle", func(t *testing.T) {
		// inner's cluster becomes its parent's: inner lists itself.
		fsys, _ := patched(t, img, func(fs *FS, b []byte) {
			parent, _ := fs.entryAt(lookupPath(t, fs, "sub dir").Ino)
			ino := lookupPath(t, fs, "sub dir", "inner").Ino
			copy(b[ino+26:ino+28], parent[26:28])
		})
		within(t, 5*time.Second, func() {
			inner := lookupPath(t, fsys, "sub dir", "inner")
			again, err := fsys.Lookup(inner.Ino, "inner")
			if err != nil || again.Ino != inner.Ino {
				t.Errorf("inner/inner: %+v %v; want the same inode %d, which a walker sees as a loop", again, err, inner.Ino)
			}
			if n := boundedWalk(fsys, 10000); n > 100 {
				t.Errorf("walk visited %d entries", n)
			}
		})
	})
	t.Run("truncated volume", func(t *testing.T) {
		b, _ := os.ReadFile(img)
		b = b[:len(b)/3]
		fsys, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if len(fsys.Info().Warnings) == 0 {
			t.Error("no warning about the missing part")
		}
		boundedWalk(fsys, 10000)
	})
	t.Run("long-name slot with a bad checksum", func(t *testing.T) {
		// The long name's checksum no longer matches: mtools, like
		// Linux, then shows the 8.3 name.
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.img")
		fsys, b := patched(t, img, func(fs *FS, b []byte) {
			ino := lookupPath(t, fs, "a long file name.txt").Ino
			b[ino+10] = 'X'
		})
		os.WriteFile(bad, b, 0o644)
		want := sh(t, "mdir", "-i", bad, "-b", "::/")
		var names []string
		fsys.ReadDir(fsys.Root(), func(e guestfs.DirEntry) error {
			names = append(names, e.Name)
			return nil
		})
		var mdir []string
		for _, l := range strings.Split(strings.TrimSpace(want), "\n") {
			mdir = append(mdir, strings.TrimSuffix(strings.TrimPrefix(l, "::/"), "/"))
		}
		sort.Strings(names)
		sort.Strings(mdir)
		if strings.Join(names, "|") != strings.Join(mdir, "|") || !strings.Contains(want, "~1.TXX") {
			t.Errorf("the reader lists %q, mdir -b %q", names, mdir)
		}
	})
}

// TestLFNSequences feeds long-name slots out of order, repeated, and past
// the end of a complete sequence: each must be dropped without a panic,
// and the 8.3 entry that follows listed under its short name unless a
// whole sequence with its checksum precedes it.
func TestLFNSequences(t *testing.T) {
	short := []byte("SHORT   TXT")
	sum := lfnChecksum(short)
	slot := func(id byte, s byte, text string) []byte {
		e := make([]byte, 32)
		e[0], e[11], e[13] = id, attrLFN, s
		u := []uint16{}
		for _, r := range text {
			u = append(u, uint16(r))
		}
		u = append(u, 0)
		for len(u) < 13 {
			u = append(u, 0xFFFF)
		}
		i := 0
		for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
			for o := r[0]; o < r[1]; o += 2 {
				binary.LittleEndian.PutUint16(e[o:], u[i])
				i++
			}
		}
		return e
	}
	entry := func() []byte {
		e := make([]byte, 32)
		copy(e, short)
		e[11] = attrArchive
		return e
	}
	for _, c := range []struct {
		name  string
		slots [][]byte
		want  string
	}{
		{"complete", [][]byte{slot(0x41, sum, "long.txt")}, "long.txt"},
		{"a slot after a complete sequence", [][]byte{slot(0x41, sum, "long.txt"), slot(0x01, sum, "x")}, "SHORT.TXT"},
		{"repeated slot", [][]byte{slot(0x42, sum, "abc"), slot(0x02, sum, "abc")}, "SHORT.TXT"},
		{"wrong checksum", [][]byte{slot(0x41, sum+1, "long.txt")}, "SHORT.TXT"},
		{"missing first slot", [][]byte{slot(0x01, sum, "long.txt")}, "SHORT.TXT"},
		{"too many slots", [][]byte{slot(0x55, sum, "long.txt")}, "SHORT.TXT"},
	} {
		var buf []byte
		for _, s := range c.slots {
			buf = append(buf, s...)
		}
		buf = append(buf, entry()...)
		var l lfnState
		var got []string
		scanEntries(buf, 0, &l, func(d *dentry) error { got = append(got, d.name); return nil })
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: listed %q, want %q", c.name, got, c.want)
		}
	}
}
