package iso9660

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// makeISO writes an image of src with xorriso's mkisofs emulation and the
// given options.
func makeISO(t testing.TB, src string, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, "xorriso")
	img := filepath.Join(t.TempDir(), "image.iso")
	sh(t, "xorriso", append(append([]string{"-as", "mkisofs", "-quiet", "-o", img}, args...), src)...)
	return img
}

// extract is the oracle: xorriso's own reading of the image, restored to
// a host folder (as root it keeps Rock Ridge owners, modes, times and
// device nodes).
func extract(t testing.TB, img string, opts ...string) map[string]*guestfstest.Node {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	// (Options such as -hardlinks act on the loading: before -indev.)
	sh(t, "xorriso", append(opts, "-osirrox", "on:device_files", "-indev", img, "-extract", "/", out)...)
	return guestfstest.Tree(t, out)
}

func openISO(t testing.TB, img string) *FS {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	if !Probe(f, fi.Size()) {
		t.Fatal("Probe: not ISO 9660")
	}
	fsys, err := Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func checkBlkid(t *testing.T, fsys *FS, img string) {
	t.Helper()
	testutil.RequireTool(t, "blkid")
	vals := map[string]string{}
	for _, tag := range []string{"LABEL", "UUID", "TYPE"} {
		out, _ := exec.Command("blkid", "-p", "-s", tag, "-o", "value", img).Output()
		vals[tag] = strings.TrimSuffix(string(out), "\n")
	}
	in := fsys.Info()
	if in.Label != vals["LABEL"] || in.UUID != vals["UUID"] || in.Type != vals["TYPE"] {
		t.Errorf("label %q uuid %q type %q; blkid: %q %q %q", in.Label, in.UUID, in.Type, vals["LABEL"], vals["UUID"], vals["TYPE"])
	}
}

// renamed maps the oracle's paths through f, component by component.
func renamed(m map[string]*guestfstest.Node, f func(string) string) map[string]*guestfstest.Node {
	out := map[string]*guestfstest.Node{}
	for p, n := range m {
		parts := strings.Split(p, "/")
		for i := range parts {
			parts[i] = f(parts[i])
		}
		n.Path = strings.Join(parts, "/")
		out[n.Path] = n
	}
	return out
}

func source(t testing.TB, nfiles int) string {
	src := filepath.Join(t.TempDir(), "src")
	buildSource(t, src, nfiles, 8<<20)
	return src
}

func TestRockRidge(t *testing.T) {
	t.Parallel()
	src := source(t, 1500)
	// -R: Rock Ridge with the real owners and modes; -J adds a Joliet
	// tree the reader must ignore; directories past level 8 are
	// relocated with CL/PL/RE.
	img := makeISO(t, src, "-R", "-J", "-joliet-long", "-rr_reloc_dir", "rr_moved", "-V", "RR and Joliet")
	// The premise: deep directories were relocated (CL and RE entries).
	if raw, _ := os.ReadFile(img); !bytes.Contains(raw, []byte("CL\x0c\x01")) || !bytes.Contains(raw, []byte("RE\x04\x01")) {
		t.Fatal("xorriso relocated no directory")
	}
	if raw, _ := os.ReadFile(img); !hasContinuedNM(raw) {
		t.Fatal("no NM entry continued in another")
	}
	fsys := openISO(t, img)
	if !fsys.rock || fsys.joliet {
		t.Fatalf("rock %v joliet %v", fsys.rock, fsys.joliet)
	}
	got := guestfstest.Walk(t, fsys, 100000)
	want := extract(t, img)
	compareRR(t, img, got, want, guestfstest.Compare{})
	t.Logf("%d paths compared with xorriso's extraction", len(want))
	if got["deep/level00/level01/level02/level03/level04/level05/level06/level07/level08/level09/level10/level11/level12/level13/bottom.txt"] == nil {
		t.Error("the relocated deep directory is not in its place")
	}
	checkBlkid(t, fsys, img)
	checkLookup(t, fsys, got, true)
}

// TestHardLinks uses RRIP 1.12's PX serial numbers (xorriso's new_rr with
// hard links recorded): the inode numbers, shared by hard links.
func TestHardLinks(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "xorriso")
	src := source(t, 100)
	img := filepath.Join(t.TempDir(), "hl.iso")
	sh(t, "xorriso", "-compliance", "new_rr", "-hardlinks", "on", "-outdev", img, "-map", src, "/")
	fsys := openISO(t, img)
	if !fsys.serials {
		t.Fatal("no PX serial numbers")
	}
	got := guestfstest.Walk(t, fsys, 100000)
	want := extract(t, img, "-hardlinks", "on")
	// (xorriso reads a hard-linked file again to link it: the host's
	// access time moves.)
	compareRR(t, img, got, want, guestfstest.Compare{NoAtime: true})
	// Link counts of files (xorriso records directories' as 1, the
	// host counts their subdirectories).
	for p, w := range want {
		if g := got[p]; g != nil && w.Attr.Mode&guestfs.TypeMask != guestfs.TypeDir && g.Attr.Nlink != w.Attr.Nlink {
			t.Errorf("%q: nlink %d, want %d", p, g.Attr.Nlink, w.Attr.Nlink)
		}
	}
	// The same paths share an inode on both sides.
	groups := func(m map[string]*guestfstest.Node) string {
		by := map[uint64][]string{}
		for p, n := range m {
			if n.Attr.Mode&guestfs.TypeMask != guestfs.TypeDir {
				by[n.Attr.Ino] = append(by[n.Attr.Ino], p)
			}
		}
		var out []string
		for _, ps := range by {
			if len(ps) > 1 {
				sort.Strings(ps)
				out = append(out, strings.Join(ps, "|"))
			}
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	if g, w := groups(got), groups(want); g != w || !strings.Contains(g, "hard/original") {
		t.Errorf("hard link groups:\n%s\nxorriso's:\n%s", g, w)
	}
	// Stat finds a serial the map has forgotten by walking the tree.
	n := got["dir with spaces/third link"]
	fsys.mu.Lock()
	clear(fsys.serialPos)
	fsys.mu.Unlock()
	fsys2 := openISO(t, img)
	if a, err := fsys2.Stat(n.Attr.Ino); err != nil || a.Size != n.Attr.Size {
		t.Errorf("stat of inode %d on a fresh open: %+v %v", n.Attr.Ino, a, err)
	}
	t.Logf("%d paths compared with xorriso's extraction", len(want))
}

func TestJoliet(t *testing.T) {
	t.Parallel()
	src := source(t, 300)
	// With an El Torito boot record and catalog, which the reader skips.
	os.MkdirAll(filepath.Join(src, "boot"), 0o755)
	os.WriteFile(filepath.Join(src, "boot", "boot.img"), bytes.Repeat([]byte{0xEB, 0xFE}, 1024), 0o644)
	img := makeISO(t, src, "--norock", "-J", "-joliet-long", "-V", "Joliet only",
		"-b", "boot/boot.img", "-c", "boot/boot.cat", "-no-emul-boot", "-boot-load-size", "4")
	fsys := openISO(t, img)
	if fsys.rock || !fsys.joliet {
		t.Fatalf("rock %v joliet %v", fsys.rock, fsys.joliet)
	}
	got := guestfstest.Walk(t, fsys, 100000)
	// xorriso keeps a Joliet name's trailing dots; Linux (and this
	// package) drops them.
	want := renamed(extract(t, img), func(s string) string {
		if len(s) >= 2 {
			return strings.TrimRight(s, ".")
		}
		return s
	})
	// Without Rock Ridge xorriso shows what Linux shows: 0555, nlink 1.
	guestfstest.Equal(t, got, want, guestfstest.Compare{Times: time.Second, NoCtime: true, NoAtime: true,
		Skip: func(p string) bool { return p == "" || strings.HasPrefix(p, "links") || strings.HasPrefix(p, "dev") }})
	for p, n := range got {
		if n.Attr.Mode&0o7777 != 0o555 || n.Attr.Uid != 0 || n.Attr.Nlink != 1 {
			t.Errorf("%q: mode %o uid %d nlink %d", p, n.Attr.Mode, n.Attr.Uid, n.Attr.Nlink)
		}
	}
	t.Logf("%d paths compared with xorriso's extraction", len(want))
	checkBlkid(t, fsys, img)
	checkLookup(t, fsys, got, false)
}

func TestPlain(t *testing.T) {
	t.Parallel()
	src := source(t, 300)
	for _, level := range []string{"1", "3"} {
		img := makeISO(t, src, "--norock", "-iso-level", level, "-V", "PLAIN_"+level)
		fsys := openISO(t, img)
		got := guestfstest.Walk(t, fsys, 100000)
		// Linux's map=normal shows the ISO names in lowercase, without
		// ";1" (and the "." before it), as xorriso shows them in
		// uppercase.
		want := renamed(extract(t, img), strings.ToLower)
		guestfstest.Equal(t, got, want, guestfstest.Compare{Times: time.Second, NoCtime: true, NoAtime: true,
			Skip: func(p string) bool { return p == "" || strings.HasPrefix(p, "links") || strings.HasPrefix(p, "dev") }})
		t.Logf("level %s: %d paths compared with xorriso's extraction", level, len(want))
		checkBlkid(t, fsys, img)
		checkLookup(t, fsys, got, false)
	}
}

// compareRR compares a Rock Ridge image with xorriso's extraction:
// everything but symlinks' owners and times (xorriso restores neither)
// and the root's times (those of the folder extracted into), then the
// symlinks' owners with xorriso's own listing of them.
func compareRR(t *testing.T, img string, got, want map[string]*guestfstest.Node, c guestfstest.Compare) {
	t.Helper()
	isLink := func(p string) bool {
		w := want[p]
		return w != nil && w.Attr.Mode&guestfs.TypeMask == guestfs.TypeSymlink
	}
	guestfstest.Equal(t, got, want, guestfstest.Compare{Owner: true, Perm: true, Times: time.Second, NoCtime: true, NoAtime: c.NoAtime,
		Skip: func(p string) bool { return p == "" || isLink(p) }})
	guestfstest.Equal(t, got, want, guestfstest.Compare{Perm: true, Skip: func(p string) bool { return !isLink(p) }})
	n := 0
	for p := range want {
		if !isLink(p) {
			continue
		}
		f := strings.Fields(sh(t, "xorriso", "-indev", img, "-lsdl", "/"+p))
		if len(f) < 4 || f[2]+":"+f[3] != fmt.Sprintf("%d:%d", got[p].Attr.Uid, got[p].Attr.Gid) {
			t.Errorf("%q: owner %d:%d, xorriso -lsdl %q", p, got[p].Attr.Uid, got[p].Attr.Gid, f)
		}
		n++
	}
	if n == 0 {
		t.Error("no symlinks")
	}
}

// hasContinuedNM says whether an image holds an NM entry flagged
// "continues in the next one".
func hasContinuedNM(raw []byte) bool {
	for i := 0; i+5 < len(raw); i++ {
		if raw[i] == 'N' && raw[i+1] == 'M' && raw[i+2] > 5 && raw[i+3] == 1 && raw[i+4] == 1 {
			return true
		}
	}
	return false
}

// checkLookup looks every top-level name up again, in other cases too
// where matching ignores case.
func checkLookup(t *testing.T, fsys *FS, got map[string]*guestfstest.Node, exact bool) {
	t.Helper()
	for p, n := range got {
		if p == "" || strings.Contains(p, "/") {
			continue
		}
		for _, name := range []string{strings.ToUpper(p), strings.ToLower(p)} {
			e, err := fsys.Lookup(fsys.Root(), name)
			switch {
			case exact && name != p:
				if err == nil && e.Ino == n.Attr.Ino {
					t.Errorf("lookup %q found %q: Rock Ridge names are case-sensitive", name, p)
				}
			case err != nil || e.Ino != n.Attr.Ino:
				t.Errorf("lookup %q (for %q): %+v %v", name, p, e, err)
			}
		}
	}
}

// TestRealFixture reads a real appliance's ISO (from the COT project's
// tests) and compares it with xorriso's extraction.
func TestRealFixture(t *testing.T) {
	img := filepath.Join(testutil.RealFixtures(t), "glennmatthews-cot", "input.iso")
	fsys := openISO(t, img)
	got := guestfstest.Walk(t, fsys, 1000)
	want := renamed(extract(t, img), func(s string) string {
		if fsys.rock || fsys.joliet {
			return s
		}
		return strings.ToLower(s)
	})
	guestfstest.Equal(t, got, want, guestfstest.Compare{Times: time.Second, NoCtime: true, NoAtime: true,
		Skip: func(p string) bool { return p == "" }})
	if len(want) < 3 {
		t.Errorf("only %d paths", len(want))
	}
	checkBlkid(t, fsys, img)
	t.Logf("%d paths compared; rock %v joliet %v label %q", len(want), fsys.rock, fsys.joliet, fsys.Info().Label)
}
