package iso9660

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
)

// boundedWalk reads every reachable file as a client would, tolerating
// every error, and stops after limit entries or at a directory seen
// twice: what the fuzz target and the hostile-volume tests run.
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

// smallTree is a few files, a subdirectory, a directory ten levels deep, a long symlink (its SL entry
// goes to a continuation area) and a file of several blocks.
func smallTree(t testing.TB) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "small")
	os.MkdirAll(filepath.Join(src, "sub", "inner"), 0o755)
	rng := rand.New(rand.NewSource(7))
	big := make([]byte, 5*2048+100)
	rng.Read(big)
	os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(src, "a long file name.txt"), []byte("long name\n"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "Ünïcødé.txt"), []byte("non-ASCII\n"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "inner", "deep.txt"), []byte("deep\n"), 0o644)
	os.Symlink(string(bytes.Repeat([]byte("a-long-symlink-component/"), 12)), filepath.Join(src, "sub", "link"))
	deep := filepath.Join(src, "deep")
	for i := 0; i < 10; i++ {
		deep = filepath.Join(deep, string(rune('a'+i)))
	}
	os.MkdirAll(deep, 0o755)
	os.WriteFile(filepath.Join(deep, "bottom"), []byte("ten levels down\n"), 0o644)
	return src
}

// rawDir finds the record named name in the directory whose own record
// is dirRec (a 34-byte or longer record), returning its offset.
func rawRecord(t *testing.T, img []byte, dirRec []byte, name string) int {
	t.Helper()
	ext := int(binary.LittleEndian.Uint32(dirRec[2:])) * 2048
	size := int(binary.LittleEndian.Uint32(dirRec[10:]))
	for s := ext; s < ext+size; s += 2048 {
		for o := s; o < s+2048 && img[o] != 0; o += int(img[o]) {
			if n := int(img[o+32]); string(img[o+33:o+33+n]) == name || strings.HasPrefix(string(img[o+33:o+33+n]), name+";") || strings.HasPrefix(string(img[o+33:o+33+n]), name+".;") {
				return o
			}
		}
	}
	t.Fatalf("no record %q", name)
	return 0
}

func rootRecord(img []byte) []byte { return img[16*2048+156 : 16*2048+156+34] }

// TestMultiExtent splits a file's record into two extents, as writers do
// for files of 4 GiB and more (xorriso cannot be made to split a smaller
// one): the first record flagged "not final", the second continuing two
// blocks on. xorriso reads the result as the same file; so must the
// reader.
func TestMultiExtent(t *testing.T) {
	src := smallTree(t)
	img := makeISO(t, src, "--norock", "-V", "MULTI")
	b, _ := os.ReadFile(img)
	o := rawRecord(t, b, rootRecord(b), "BIG.BIN;1")
	n := int(b[o])
	rec := append([]byte(nil), b[o:o+n]...)
	size := binary.LittleEndian.Uint32(rec[10:])
	first, second := append([]byte(nil), rec...), append([]byte(nil), rec...)
	first[25] |= flagMultiExt
	binary.LittleEndian.PutUint32(first[10:], 2*2048)
	binary.BigEndian.PutUint32(first[14:], 2*2048)
	ext := binary.LittleEndian.Uint32(rec[2:]) + 2
	binary.LittleEndian.PutUint32(second[2:], ext)
	binary.BigEndian.PutUint32(second[6:], ext)
	binary.LittleEndian.PutUint32(second[10:], size-2*2048)
	binary.BigEndian.PutUint32(second[14:], size-2*2048)
	sec := o / 2048 * 2048
	rest := append([]byte(nil), b[o+n:sec+2048]...)
	if !bytes.Equal(rest[len(rest)-n:], make([]byte, n)) {
		t.Fatal("no room in the directory sector for another record")
	}
	copy(b[o:], first)
	copy(b[o+n:], second)
	copy(b[o+2*n:sec+2048], rest[:len(rest)-n])
	split := filepath.Join(t.TempDir(), "split.iso")
	os.WriteFile(split, b, 0o644)

	fsys := openISO(t, split)
	got := guestfstest.Walk(t, fsys, 1000)
	want := renamed(extract(t, split), func(s string) string { return string(bytes.ToLower([]byte(s))) })
	guestfstest.Equal(t, got, want, guestfstest.Compare{Times: time.Second, NoCtime: true, NoAtime: true,
		Skip: func(p string) bool { return p == "" }})
	orig, _ := os.ReadFile(filepath.Join(src, "big.bin"))
	e, err := fsys.Lookup(fsys.Root(), "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open(e.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.(*file).extents) != 2 || f.Size() != int64(len(orig)) {
		t.Fatalf("%d extents, size %d", len(f.(*file).extents), f.Size())
	}
	// A read across the extents' seam.
	p := make([]byte, 300)
	if _, err := f.ReadAt(p, 2*2048-150); err != nil || !bytes.Equal(p, orig[2*2048-150:2*2048+150]) {
		t.Errorf("read across the seam: %v", err)
	}
	// Stat of a fresh open reads both records from the inode number.
	if a, err := openISO(t, split).Stat(e.Ino); err != nil || a.Size != int64(len(orig)) {
		t.Errorf("stat: %+v %v", a, err)
	}

	t.Run("second extent past the volume", func(t *testing.T) {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(c[o+n+2:], uint32(len(c)/2048+10))
		fsys, err := Open(bytes.NewReader(c), int64(len(c)))
		if err != nil {
			t.Fatal(err)
		}
		e, err := fsys.Lookup(fsys.Root(), "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		f, err := fsys.Open(e.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size())); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("read: %v, want ErrCorrupt", err)
		}
	})
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
	src := smallTree(t)
	rr := makeISO(t, src, "-R", "-V", "HOSTILE")
	plain := makeISO(t, src, "--norock", "-V", "HOSTILE")
	load := func(p string) []byte { b, _ := os.ReadFile(p); return b }
	open := func(t *testing.T, b []byte) *FS {
		t.Helper()
		fsys, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		return fsys
	}
	readDir := func(fsys *FS, ino uint64) error {
		return fsys.ReadDir(ino, func(guestfs.DirEntry) error { return nil })
	}
	t.Run("record past its sector", func(t *testing.T) {
		// Records of 255 bytes fill the root's sector after its last one,
		// and the last of them runs past the sector's end.
		b := load(plain)
		o := int(binary.LittleEndian.Uint32(rootRecord(b)[2:])) * 2048
		end := o + 2048
		for b[o] != 0 {
			o += int(b[o])
		}
		for ; o < end; o += 255 {
			b[o], b[o+32], b[o+33] = 255, 1, 'X'
			if end-o < 255 {
				break
			}
		}
		if err := readDir(open(t, b), open(t, b).Root()); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("readdir: %v, want ErrCorrupt", err)
		}
	})
	t.Run("record shorter than its fields", func(t *testing.T) {
		b := load(plain)
		o := rawRecord(t, b, rootRecord(b), "BIG.BIN;1")
		b[o] = 12
		if err := readDir(open(t, b), open(t, b).Root()); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("readdir: %v, want ErrCorrupt", err)
		}
	})
	t.Run("directory cycle", func(t *testing.T) {
		b := load(plain)
		root := rootRecord(b)
		o := rawRecord(t, b, root, "SUB")
		copy(b[o+2:o+18], root[2:18]) // SUB's extent and size become the root's
		fsys := open(t, b)
		within(t, 5*time.Second, func() {
			sub, err := fsys.Lookup(fsys.Root(), "sub")
			if err != nil {
				t.Fatal(err)
			}
			again, err := fsys.Lookup(sub.Ino, "sub")
			if err != nil || again.Ino != sub.Ino {
				t.Errorf("sub/sub: %+v %v; want inode %d again, which a walker sees as a loop", again, err, sub.Ino)
			}
			if n := boundedWalk(fsys, 10000); n > 50 {
				t.Errorf("walk visited %d entries", n)
			}
		})
	})
	t.Run("continuation area loop", func(t *testing.T) {
		// The symlink's SL entry is in a continuation area: make that
		// area's first entry a CE pointing at the area itself.
		b := load(rr)
		root := rootRecord(b)
		sub := rawRecord(t, b, root, "SUB")
		o := rawRecord(t, b, b[sub:sub+int(b[sub])], "LINK")
		su := b[o+33+int(b[o+32]) : o+int(b[o])]
		ce := bytes.Index(su, []byte("CE\x1c\x01"))
		if ce < 0 {
			t.Fatal("the symlink's record has no CE entry")
		}
		e := su[ce : ce+28]
		area := int(binary.LittleEndian.Uint32(e[4:]))*2048 + int(binary.LittleEndian.Uint32(e[12:]))
		copy(b[area:], e)
		fsys := open(t, b)
		within(t, 5*time.Second, func() {
			s, err := fsys.Lookup(fsys.Root(), "sub")
			if err != nil {
				t.Fatal(err)
			}
			if err := readDir(fsys, s.Ino); !errors.Is(err, guestfs.ErrCorrupt) {
				t.Errorf("readdir: %v, want ErrCorrupt", err)
			}
			boundedWalk(fsys, 10000)
		})
	})
	t.Run("symlink component past its entry", func(t *testing.T) {
		b := load(rr)
		i := bytes.Index(b, []byte("a-long-symlink-component"))
		if i < 2 {
			t.Fatal("no symlink component found")
		}
		b[i-1] = 250 // the component's length byte
		fsys := open(t, b)
		s, err := fsys.Lookup(fsys.Root(), "sub")
		if err != nil {
			t.Fatal(err)
		}
		if err := readDir(fsys, s.Ino); !errors.Is(err, guestfs.ErrCorrupt) {
			t.Errorf("readdir: %v, want ErrCorrupt", err)
		}
	})
	t.Run("truncated volume", func(t *testing.T) {
		b := load(rr)
		b = b[:len(b)*2/3]
		fsys := open(t, b)
		if len(fsys.Info().Warnings) == 0 {
			t.Error("no warning about the missing part")
		}
		boundedWalk(fsys, 10000)
	})
	t.Run("interleaved file", func(t *testing.T) {
		b := load(plain)
		o := rawRecord(t, b, rootRecord(b), "BIG.BIN;1")
		b[o+26], b[o+27] = 1, 1
		fsys := open(t, b)
		e, err := fsys.Lookup(fsys.Root(), "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Open(e.Ino); !errors.Is(err, guestfs.ErrUnsupported) {
			t.Errorf("open: %v, want ErrUnsupported", err)
		}
	})
}
