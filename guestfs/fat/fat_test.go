package fat

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// image is a FAT volume made by mkfs.vfat and filled by mtools.
type image struct {
	path string
	dir  string
	src  string
}

// makeImage formats a sparse file of sizeMiB with mkfs.vfat args, copies a
// source tree into it with mcopy -s -m (keeping modification times), then
// fragments a file: twenty small files are copied, every other one
// deleted, and a larger file copied into the holes. Attributes are set
// with mattrib.
func makeImage(t testing.TB, sizeMiB int, nfiles int, budget int64, mkfsArgs ...string) *image {
	t.Helper()
	testutil.RequireTool(t, "mkfs.vfat")
	testutil.RequireTool(t, "mcopy")
	dir := t.TempDir()
	im := &image{path: filepath.Join(dir, "fat.img"), dir: dir, src: filepath.Join(dir, "src")}
	if err := os.WriteFile(im.path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(im.path, int64(sizeMiB)<<20); err != nil {
		t.Fatal(err)
	}
	sh(t, "mkfs.vfat", append(mkfsArgs, im.path)...)
	buildSource(t, im.src, nfiles, budget)
	ents, err := os.ReadDir(im.src)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-s", "-m", "-i", im.path}
	for _, e := range ents {
		args = append(args, filepath.Join(im.src, e.Name()))
	}
	sh(t, "mcopy", append(args, "::/")...)

	frag := filepath.Join(dir, "frag")
	os.MkdirAll(frag, 0o755)
	rng := rand.New(rand.NewSource(int64(sizeMiB)))
	var small []string
	for i := 0; i < 20; i++ {
		b := make([]byte, 3000+rng.Intn(3000))
		rng.Read(b)
		p := filepath.Join(frag, fmt.Sprintf("piece%02d.bin", i))
		os.WriteFile(p, b, 0o644)
		small = append(small, p)
	}
	sh(t, "mmd", "-i", im.path, "::/frag")
	sh(t, "mcopy", append(append([]string{"-m", "-i", im.path}, small...), "::/frag/")...)
	for i := 0; i < 20; i += 2 {
		sh(t, "mdel", "-i", im.path, fmt.Sprintf("::/frag/piece%02d.bin", i))
	}
	forgetNextFree(t, im.path)
	big := make([]byte, 70000)
	rng.Read(big)
	os.WriteFile(filepath.Join(frag, "fragmented.bin"), big, 0o644)
	sh(t, "mcopy", "-m", "-i", im.path, filepath.Join(frag, "fragmented.bin"), "::/frag/")

	sh(t, "mattrib", "-i", im.path, "+r", "::/readme.txt")
	sh(t, "mattrib", "-i", im.path, "+h", "+s", "::/Mixed.Txt")
	sh(t, "mattrib", "-i", im.path, "-a", "::/UPPER.TXT")
	return im
}

// forgetNextFree sets a FAT32 volume's FSInfo hints to "unknown", so that
// mtools looks for free clusters from the start, in the holes the deleted
// files left, rather than after the last one it allocated.
func forgetNextFree(t testing.TB, img string) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 512)
	f.ReadAt(b, 0)
	if binary.LittleEndian.Uint16(b[22:]) != 0 {
		return // FAT12/16: no FSInfo
	}
	fsinfo := int64(binary.LittleEndian.Uint16(b[48:])) * int64(binary.LittleEndian.Uint16(b[11:]))
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xFF}, 8), fsinfo+488); err != nil {
		t.Fatal(err)
	}
}

func openImage(t testing.TB, path string) (*FS, *os.File) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	if !Probe(f, fi.Size()) {
		t.Fatal("Probe: not FAT")
	}
	fsys, err := Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fsys, f
}

// extract copies the whole volume out with mcopy -s -m: the oracle tree.
func extract(t testing.TB, img string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	os.MkdirAll(out, 0o755)
	var names []string
	for _, l := range strings.Split(sh(t, "mdir", "-i", img, "-a", "-b", "::/"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	sh(t, "mcopy", append(append([]string{"-s", "-m", "-n", "-i", img}, names...), out+"/")...)
	return out
}

// flsEntry is one line of sleuthkit's fls -m body output.
type flsEntry struct {
	inode                      string
	dir                        bool
	size                       int64
	atime, mtime, ctime, btime int64
}

func fls(t testing.TB, img string) map[string]flsEntry {
	t.Helper()
	testutil.RequireTool(t, "fls")
	out := map[string]flsEntry{}
	sc := bufio.NewScanner(strings.NewReader(sh(t, "fls", "-r", "-p", "-m", "/", img)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 11 {
			t.Fatalf("fls line %q", sc.Text())
		}
		name := strings.TrimPrefix(f[1], "/")
		if strings.HasPrefix(name, "$") || strings.Contains(name, "(deleted") || strings.Contains(name, "(Volume Label Entry)") {
			continue
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		out[name] = flsEntry{inode: f[2], dir: strings.HasPrefix(f[3], "d/"), size: n(6), atime: n(7), mtime: n(8), ctime: n(9), btime: n(10)}
	}
	return out
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func testVolume(t *testing.T, label string, sizeMiB, nfiles int, budget int64, wantBits int, mkfsArgs ...string) {
	start := time.Now()
	defer func() { t.Logf("FAT%d: %v", wantBits, time.Since(start)) }()
	im := makeImage(t, sizeMiB, nfiles, budget, append([]string{"-n", label}, mkfsArgs...)...)
	t.Logf("image built: %v", time.Since(start))
	fsys, _ := openImage(t, im.path)
	if fsys.bits != wantBits {
		t.Fatalf("FAT%d, want FAT%d", fsys.bits, wantBits)
	}
	got := guestfstest.Walk(t, fsys, 100000)

	// mtools' extraction: names, types, sizes, bytes, modification times.
	want := guestfstest.Tree(t, extract(t, im.path))
	guestfstest.Equal(t, got, want, guestfstest.Compare{Times: time.Second, NoAtime: true, NoCtime: true, Nlink: true,
		Skip: func(p string) bool { return p == "" }})
	t.Logf("FAT%d: %d paths compared with mcopy's extraction", wantBits, len(want))

	// sleuthkit: names, sizes (directories too), access date, modification
	// and creation times, and the bytes icat reads for every file.
	fl := fls(t, im.path)
	nfl, nicat := 0, 0
	for p, w := range fl {
		g := got[p]
		if g == nil {
			t.Errorf("fls lists %q, the reader does not", p)
			continue
		}
		nfl++
		if w.dir != (g.Attr.Mode&guestfs.TypeMask == guestfs.TypeDir) {
			t.Errorf("%q: fls type dir=%v, mode %o", p, w.dir, g.Attr.Mode)
		}
		if w.size != g.Attr.Size {
			t.Errorf("%q: size %d, fls %d", p, g.Attr.Size, w.size)
		}
		for _, c := range []struct {
			what string
			g    time.Time
			w    int64
		}{{"atime", g.Attr.Atime, w.atime}, {"mtime", g.Attr.Mtime, w.mtime}, {"btime", g.Attr.Btime, w.btime}} {
			gs := int64(0)
			if !c.g.IsZero() {
				gs = c.g.Unix()
			}
			if gs != c.w {
				t.Errorf("%q: %s %v, fls %v", p, c.what, c.g, time.Unix(c.w, 0).UTC())
			}
		}
		if !w.dir && (nicat < 20 || strings.HasPrefix(p, "frag/")) {
			nicat++
			if s := sha([]byte(sh(t, "icat", im.path, w.inode))); s != g.SHA256 {
				t.Errorf("%q: content differs from icat's", p)
			}
		}
	}
	for p := range got {
		if _, ok := fl[p]; !ok && p != "" {
			t.Errorf("%q: not listed by fls", p)
		}
	}
	t.Logf("FAT%d: %d paths compared with fls, %d files with icat", wantBits, nfl, nicat)

	// The fragmented file is in several runs (the test's premise).
	e, err := fsys.Lookup(fsys.Root(), "frag")
	if err == nil {
		e, err = fsys.Lookup(e.Ino, "fragmented.bin")
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open(e.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.(*file).runs); n < 2 {
		t.Errorf("fragmented.bin is in %d run", n)
	}

	t.Logf("fls compared: %v", time.Since(start))
	// blkid: label and UUID.
	checkBlkid(t, fsys, im.path)

	// Attributes as mtools' mattrib sets them and shows them.
	checkAttrs(t, fsys, im.path, got)

	// Case-insensitive lookup by the names mtools resolves: each file's
	// name in other cases, and its 8.3 name as mshortname prints it.
	checkLookup(t, fsys, im.path, got)
}

func checkBlkid(t *testing.T, fsys *FS, img string) {
	t.Helper()
	testutil.RequireTool(t, "blkid")
	vals := map[string]string{}
	for _, tag := range []string{"LABEL", "UUID", "TYPE"} {
		// blkid exits 2 when the volume has no such tag.
		out, _ := exec.Command("blkid", "-p", "-s", tag, "-o", "value", img).Output()
		vals[tag] = strings.TrimSuffix(string(out), "\n")
	}
	in := fsys.Info()
	if in.Label != vals["LABEL"] || in.UUID != vals["UUID"] || in.Type != vals["TYPE"] {
		t.Errorf("label %q uuid %q type %q; blkid: %q %q %q", in.Label, in.UUID, in.Type, vals["LABEL"], vals["UUID"], vals["TYPE"])
	}
}

// checkAttrs compares Attr.Flags and the read-only mode with mattrib's
// listing of the top-level files.
func checkAttrs(t *testing.T, fsys *FS, img string, got map[string]*guestfstest.Node) {
	t.Helper()
	n := 0
	for _, l := range strings.Split(sh(t, "mattrib", "-i", img, "::/*"), "\n") {
		if len(l) < 12 {
			continue
		}
		flags, path := l[:10], strings.TrimSpace(l[10:])
		name := strings.TrimPrefix(path, "::/")
		if i := strings.Index(name, "  "); i >= 0 {
			name = name[:i]
		}
		g := got[name]
		if g == nil {
			t.Errorf("mattrib lists %q (%q)", name, l)
			continue
		}
		n++
		var want guestfs.Flags
		for _, c := range []struct {
			ch byte
			f  guestfs.Flags
		}{{'A', guestfs.FlagArchive}, {'S', guestfs.FlagSystem}, {'H', guestfs.FlagHidden}, {'R', guestfs.FlagImmutable}} {
			if strings.IndexByte(flags, c.ch) >= 0 {
				want |= c.f
			}
		}
		if g.Attr.Flags != want {
			t.Errorf("%q: flags %v, mattrib %q", name, g.Attr.Flags, flags)
		}
		if g.Attr.Mode&guestfs.TypeMask == guestfs.TypeRegular {
			if perm := g.Attr.Mode & 0o777; perm != map[bool]uint32{true: 0o444, false: 0o644}[want&guestfs.FlagImmutable != 0] {
				t.Errorf("%q: mode %o with flags %v", name, perm, want)
			}
		}
	}
	if n < 5 {
		t.Errorf("mattrib listed %d top-level names", n)
	}
}

func checkLookup(t *testing.T, fsys *FS, img string, got map[string]*guestfstest.Node) {
	t.Helper()
	testutil.RequireTool(t, "mshortname")
	var paths []string
	for p, n := range got {
		if p != "" && !strings.Contains(p, "/") && n.Attr.Mode&guestfs.TypeMask == guestfs.TypeRegular {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	args := []string{"-i", img}
	for _, p := range paths {
		args = append(args, "::/"+p)
	}
	shorts := strings.Split(strings.TrimSpace(sh(t, "mshortname", args...)), "\n")
	if len(shorts) != len(paths) {
		t.Fatalf("mshortname printed %d names for %d", len(shorts), len(paths))
	}
	for i, p := range paths {
		want := got[p].Attr.Ino
		// mshortname prints the stored bytes; Linux shows them in code
		// page 437.
		short := decodeOEM([]byte(strings.TrimPrefix(shorts[i], "::/")), false)
		for _, name := range []string{strings.ToUpper(p), strings.ToLower(p), short, strings.ToLower(short)} {
			e, err := fsys.Lookup(fsys.Root(), name)
			if err != nil || e.Ino != want {
				t.Errorf("lookup %q (for %q): %+v %v, want inode %d", name, p, e, err, want)
			}
			// mtools resolves the same name to the same bytes.
			if !isASCII(name) {
				continue
			}
			if b := sh(t, "mtype", "-i", img, "::/"+name); sha([]byte(b)) != got[p].SHA256 {
				t.Errorf("mtype %q differs from %q", name, p)
			}
		}
	}
}

func TestFAT12(t *testing.T) {
	t.Parallel()
	testVolume(t, "SMALL12", 4, 150, 1500<<10, 12, "-F", "12")
}

func TestFAT16(t *testing.T) {
	t.Parallel()
	testVolume(t, "MEDIUM16", 16, 300, 6<<20, 16, "-F", "16", "-s", "4")
}

func TestFAT32(t *testing.T) {
	t.Parallel()
	testVolume(t, "LARGE32", 48, 400, 8<<20, 32, "-F", "32", "-S", "512", "-s", "1")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

var _ = bytes.Equal
