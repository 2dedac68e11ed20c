package ntfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// oracleOpts mounts ntfs-3g read-only as the package doc says the reader
// shows files: without a user mapping, directories 0755 and files 0644,
// alternate data streams as user.* xattrs.
const oracleOpts = "ro,fmask=0133,dmask=0022,streams_interface=xattr"

// compareAll compares every field ntfs-3g shows the same way.
var compareAll = guestfstest.Compare{Owner: true, Perm: true, Nlink: true, Ino: true, Xattrs: true, Times: 100 * time.Nanosecond}

// oracleTree reads img through a read-only ntfs-3g mount and rewrites what
// ntfs-3g shows differently by design, as the package doc says:
//   - streams are "user.NAME" there, "ntfs.stream.NAME" here;
//   - a link count is the number of names a file has in the tree (ntfs-3g
//     shows the record's count, which counts a DOS alias as a link);
//   - absolute Windows link targets are mount-point paths there, relative
//     paths through the volume's root here;
//   - files with WSL's metadata have its owner and mode, which ntfs-3g
//     does not show.
func oracleTree(t *testing.T, img string) map[string]*guestfstest.Node {
	dir, unmount := ntfs3g(t, img, oracleOpts)
	defer unmount()
	want := guestfstest.Tree(t, dir)
	names := map[uint64]uint32{}
	for _, n := range want {
		names[n.Attr.Ino]++
	}
	for p, n := range want {
		xs := map[string]string{}
		for k, v := range n.Xattrs {
			if strings.HasPrefix(k, "user.") {
				xs["ntfs.stream."+strings.TrimPrefix(k, "user.")] = v
			}
		}
		n.Xattrs = xs
		if n.Attr.Mode&guestfs.TypeMask != guestfs.TypeDir {
			n.Attr.Nlink = names[n.Attr.Ino]
		}
		if rest, ok := strings.CutPrefix(n.Target, dir); ok {
			up := strings.Repeat("../", strings.Count(p, "/"))
			n.Target = strings.TrimSuffix(up+strings.TrimPrefix(rest, "/"), "/")
			n.Attr.Size = int64(len(n.Target))
		}
		if m, ok := wslMeta[p]; ok {
			n.Attr.Mode = n.Attr.Mode&guestfs.TypeMask | m.mode
			n.Attr.Uid, n.Attr.Gid = m.uid, m.gid
		}
	}
	return want
}

func skipPaths(paths ...string) func(string) bool {
	return func(p string) bool {
		for _, s := range paths {
			if p == s || strings.HasPrefix(p, s+"/") {
				return true
			}
		}
		return false
	}
}

// TestNTFS3g compares every file of the main image, walked through the
// reader (every Lookup included), with a read-only ntfs-3g mount.
func TestNTFS3g(t *testing.T) {
	img := mainImage(t)
	got := walkImage(t, img)
	want := oracleTree(t, img)
	if len(want) < 2000+bigDirEntries {
		t.Fatalf("ntfs-3g shows only %d paths", len(want))
	}
	c := compareAll
	// ntfs-3g shows these as "unsupported reparse tag": TestWindowsLinks
	// checks them.
	c.Skip = skipPaths(pathUNCLink, pathVolLink)
	guestfstest.Equal(t, got, want, c)
	// Equal checks the streams ntfs-3g lists; none may be extra.
	for p, g := range got {
		if w := want[p]; w != nil && len(g.Xattrs) != len(w.Xattrs) {
			t.Errorf("%s: streams %v, ntfs-3g lists %v", p, g.Xattrs, w.Xattrs)
		}
	}
	kinds := map[uint32]int{}
	for _, n := range got {
		kinds[n.Attr.Mode&guestfs.TypeMask]++
	}
	t.Logf("%d paths compared with ntfs-3g; by type: %v", len(want), kinds)
}

// TestSleuthkit compares names and MFT record numbers with fls, and the
// bytes of regular files with icat.
func TestSleuthkit(t *testing.T) {
	testutil.RequireTool(t, "fls")
	testutil.RequireTool(t, "icat")
	{
		{
			img := mainImage(t)
			got := walkImage(t, img)
			want := flsTree(t, img)
			for p, ino := range want {
				g := got[p]
				switch {
				case g == nil:
					t.Errorf("fls lists %q (%d), the reader does not", p, ino)
				case g.Attr.Ino != ino:
					t.Errorf("%q: inode %d, fls says %d", p, g.Attr.Ino, ino)
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok && p != "" {
					t.Errorf("the reader lists %q, fls does not", p)
				}
			}
			// icat (which reads the whole MFT each time): the sparse and
			// sized files, those compressed by the test, and 20 others.
			var paths []string
			for p, g := range got {
				if g.Attr.Mode&guestfs.TypeMask == guestfs.TypeRegular {
					paths = append(paths, p)
				}
			}
			sort.Strings(paths)
			n := 0
			for i, p := range paths {
				if i%(len(paths)/20+1) != 0 && p != pathSparse && !strings.HasPrefix(p, "sizes/") &&
					!(strings.HasPrefix(p, "compressed/") && strings.Count(p, "/") == 1) {
					continue
				}
				out := command(t, "icat", img, strconv.FormatUint(got[p].Attr.Ino, 10))
				if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != got[p].SHA256 {
					t.Errorf("%q: content differs from icat's (%d bytes)", p, len(out))
				}
				n++
			}
			t.Logf("%d names compared with fls, %d files with icat", len(want), n)
		}
	}
}

// flsTree lists an image with fls: paths and MFT record numbers, leaving
// out the metadata files (records below 16), fls's $OrphanFiles and the
// streams it lists as "name:stream".
func flsTree(t *testing.T, img string) map[string]uint64 {
	out := command(t, "fls", "-r", "-p", "-u", img)
	tree := map[string]uint64{}
	var streams []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		meta, name, ok := strings.Cut(line, ":\t")
		if !ok {
			t.Fatalf("fls line %q", line)
		}
		fields := strings.Fields(meta)
		inoText, _, _ := strings.Cut(fields[len(fields)-1], "-")
		ino, err := strconv.ParseUint(inoText, 10, 64)
		if err != nil {
			t.Fatalf("fls line %q: %v", line, err)
		}
		if ino < 16 || strings.HasPrefix(name, "$OrphanFiles") {
			continue
		}
		if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
			streams = append(streams, name)
			continue
		}
		tree[name] = ino
	}
	for _, s := range streams {
		// A directory's streams are "dir/.:name".
		base := strings.TrimSuffix(s[:strings.LastIndexByte(s, ':')], "/.")
		if _, ok := tree[base]; !ok && !strings.HasPrefix(base, "$") {
			t.Errorf("fls lists stream %q of no file", s)
		}
	}
	// What is under a metadata directory ($Extend) is left out too.
	for p := range tree {
		if strings.HasPrefix(p, "$") {
			delete(tree, p)
		}
	}
	return tree
}

// TestNtfscat compares some files and every stream the reader lists with
// ntfscat.
func TestNtfscat(t *testing.T) {
	testutil.RequireTool(t, "ntfscat")
	img := mainImage(t)
	got := walkImage(t, img)
	files, streams := 0, 0
	for p, g := range got {
		if g.Attr.Mode&guestfs.TypeMask == guestfs.TypeRegular && (strings.HasPrefix(p, "compressed/") && strings.Count(p, "/") == 1 ||
			p == pathSparse || strings.HasPrefix(p, "sizes/") || p == "links/a") {
			out := command(t, "ntfscat", "-i", strconv.FormatUint(g.Attr.Ino, 10), img)
			if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != g.SHA256 {
				t.Errorf("%q: content differs from ntfscat's", p)
			}
			files++
		}
		for name, v := range g.Xattrs {
			stream := strings.TrimPrefix(name, "ntfs.stream.")
			out := command(t, "ntfscat", "-i", strconv.FormatUint(g.Attr.Ino, 10), "-a", "0x80", "-n", stream, img)
			if string(out) != v {
				t.Errorf("%q: stream %q is %d bytes, ntfscat reads %d", p, stream, len(v), len(out))
			}
			streams++
		}
	}
	// The stream over 64 KiB is left out, and says so in the package doc.
	if _, ok := got[pathBigStream].Xattrs["ntfs.stream.big"]; ok {
		t.Errorf("%s: the stream over 64 KiB is listed", pathBigStream)
	}
	if out := command(t, "ntfscat", "-i", strconv.FormatUint(got[pathBigStream].Attr.Ino, 10), "-a", "0x80", "-n", "big", img); len(out) <= xattrMax {
		t.Errorf("the big stream is only %d bytes", len(out))
	}
	if files < 15 || streams < 5 {
		t.Errorf("compared only %d files and %d streams", files, streams)
	}
	t.Logf("%d files and %d streams compared with ntfscat", files, streams)
}

// TestAttributesAndBirth compares the Windows attributes and creation
// times of every file and directory with those ntfs-3g shows as
// system.ntfs_attrib and system.ntfs_crtime.
func TestAttributesAndBirth(t *testing.T) {
	img := mainImage(t)
	got := walkImage(t, img)
	dir, unmount := ntfs3g(t, img, oracleOpts)
	defer unmount()
	flagOf := map[uint32]guestfs.Flags{
		faReadOnly: guestfs.FlagImmutable, faHidden: guestfs.FlagHidden, faSystem: guestfs.FlagSystem,
		faArchive: guestfs.FlagArchive, faSparse: guestfs.FlagSparse, faCompressed: guestfs.FlagCompressed,
		faEncrypted: guestfs.FlagEncrypted,
	}
	seen := map[guestfs.Flags]int{}
	for p, g := range got {
		typ := g.Attr.Mode & guestfs.TypeMask
		if typ != guestfs.TypeRegular && typ != guestfs.TypeDir {
			continue // ntfs-3g hides the system bit of its Interix files
		}
		var b [8]byte
		if _, err := unix.Lgetxattr(dir+"/"+p, "system.ntfs_attrib", b[:4]); err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		var want guestfs.Flags
		for fa, f := range flagOf {
			if binary.LittleEndian.Uint32(b[:4])&fa != 0 {
				want |= f
			}
		}
		if g.Attr.Flags != want {
			t.Errorf("%q: flags %v, ntfs-3g shows %v", p, g.Attr.Flags, want)
		}
		seen[want]++
		if _, err := unix.Lgetxattr(dir+"/"+p, "system.ntfs_crtime", b[:]); err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		v := binary.LittleEndian.Uint64(b[:])
		birth := time.Unix(int64(v/10_000_000)-11_644_473_600, int64(v%10_000_000)*100)
		if !g.Attr.Btime.Equal(birth) {
			t.Errorf("%q: created %v, ntfs-3g says %v", p, g.Attr.Btime, birth)
		}
	}
	for _, f := range []guestfs.Flags{guestfs.FlagImmutable, guestfs.FlagHidden, guestfs.FlagSystem, guestfs.FlagSparse, guestfs.FlagCompressed} {
		n := 0
		for s, c := range seen {
			if s&f != 0 {
				n += c
			}
		}
		if n == 0 {
			t.Errorf("no file with flag %v compared", f)
		}
	}
}

// TestWindowsLinks checks the targets ntfs-3g cannot show: a UNC path and
// a volume GUID path are shown as stored, with slashes (package doc).
func TestWindowsLinks(t *testing.T) {
	fsys := openImage(t, mainImage(t))
	for p, want := range map[string]string{
		pathUNCLink: "/??/UNC/server/share/file",
		pathVolLink: "/??/Volume{01234567-89ab-cdef-0123-456789abcdef}/x",
	} {
		e := lookupPath(t, fsys, p)
		a, err := fsys.Stat(e.Ino)
		must(t, err)
		target, err := fsys.Readlink(e.Ino)
		must(t, err)
		if a.Mode&guestfs.TypeMask != guestfs.TypeSymlink || target != want || a.Size != int64(len(want)) {
			t.Errorf("%s: mode %o, target %q (size %d), want a symlink to %q", p, a.Mode, target, a.Size, want)
		}
	}
}

// lookupPath resolves a slash-separated path from the root.
func lookupPath(t testing.TB, fsys guestfs.FS, p string) guestfs.DirEntry {
	t.Helper()
	e := guestfs.DirEntry{Ino: fsys.Root(), Type: guestfs.TypeDir}
	for _, name := range strings.Split(p, "/") {
		var err error
		if e, err = fsys.Lookup(e.Ino, name); err != nil {
			t.Fatalf("lookup %q in %q: %v", name, p, err)
		}
	}
	return e
}

// TestLookup checks the names Windows finds and listings leave out: case
// is ignored (through the volume's $UpCase), an exact case wins among
// POSIX names differing in case only, a DOS alias finds its file but is
// never listed, and the metadata files are hidden. The inode numbers are
// those ntfs-3g shows for the exact names.
func TestLookup(t *testing.T) {
	img := mainImage(t)
	fsys := openImage(t, img)
	dir, unmount := ntfs3g(t, img, oracleOpts)
	defer unmount()
	ino := func(p string) uint64 {
		var st unix.Stat_t
		must(t, unix.Lstat(dir+"/"+p, &st))
		return st.Ino
	}
	names := lookupPath(t, fsys, "names").Ino
	for name, want := range map[string]string{
		"CAFÉ.TXT": "names/café.txt", "ωMEGA σ": "names/Ωmega Σ", "mixed.case": "names/MiXeD.CaSe",
		"abc": "names/abc", "ABC": "names/ABC", "Abc": "names/Abc", "ÜNÏCÖDÉ DIR": "names/Ünïcödé dir",
	} {
		e, err := fsys.Lookup(names, name)
		if err != nil || e.Ino != ino(want) {
			t.Errorf("lookup %q: %+v, %v; want inode %d (%s)", name, e, err, ino(want), want)
		}
	}
	if e, err := fsys.Lookup(names, "aBc"); err != nil || e.Ino != ino("names/abc") && e.Ino != ino("names/ABC") && e.Ino != ino("names/Abc") {
		t.Errorf("lookup aBc: %+v, %v", e, err)
	}
	root := fsys.Root()
	for _, alias := range []struct{ name, path string }{{"LONGFI~1.TXT", pathLongDOS}, {"longfi~1.txt", pathLongDOS}, {"progra~1", pathDOSDir}} {
		if e, err := fsys.Lookup(root, alias.name); err != nil || e.Ino != ino(alias.path) {
			t.Errorf("lookup %q: %+v, %v; want inode %d", alias.name, e, err, ino(alias.path))
		}
	}
	listed := map[string]bool{}
	must(t, fsys.ReadDir(root, func(e guestfs.DirEntry) error { listed[e.Name] = true; return nil }))
	for _, hidden := range []string{"LONGFI~1.TXT", "PROGRA~1", "$MFT", "$Extend", "$UpCase", ".", ".."} {
		if listed[hidden] {
			t.Errorf("the root lists %q", hidden)
		}
	}
	if !listed[pathLongDOS] || !listed[pathDOSDir] {
		t.Errorf("the root does not list the long names of files with DOS aliases: %v", listed)
	}
	for _, name := range []string{"$MFT", "$Extend", "$UpCase", ".", "..", "", "a/b", "no such name"} {
		if _, err := fsys.Lookup(root, name); !errors.Is(err, guestfs.ErrNotExist) {
			t.Errorf("lookup %q in the root: %v, want ErrNotExist", name, err)
		}
	}
	if _, err := fsys.Lookup(lookupPath(t, fsys, "sizes/0.bin").Ino, "x"); !errors.Is(err, guestfs.ErrNotDir) {
		t.Errorf("lookup in a file: %v, want ErrNotDir", err)
	}
}

// TestSparse checks the holes the reader reports in a sparse file and in
// a compressed one against where the test wrote data.
func TestSparse(t *testing.T) {
	fsys := openImage(t, mainImage(t))
	for _, p := range []string{pathSparse, pathCompSparse} {
		e := lookupPath(t, fsys, p)
		a, err := fsys.Stat(e.Ino)
		must(t, err)
		f, err := fsys.Open(e.Ino)
		must(t, err)
		sp, ok := f.(guestfs.Sparse)
		if !ok {
			t.Fatal("files do not implement guestfs.Sparse")
		}
		if a.Blocks >= a.Size/2 {
			t.Errorf("%s: %d bytes allocated of %d", p, a.Blocks, a.Size)
		}
		written := sparseData
		if p == pathCompSparse {
			written = []struct{ off, n int64 }{{3 << 20, 100000}}
		}
		for _, w := range written {
			if d, ok, err := sp.NextData(w.off); err != nil || !ok || d != w.off {
				t.Errorf("%s: NextData(%d) = %d, %v, %v", p, w.off, d, ok, err)
			}
			if h, err := sp.NextHole(w.off); err != nil || h < w.off+w.n {
				t.Errorf("%s: NextHole(%d) = %d, %v; data runs to %d", p, w.off, h, err, w.off+w.n)
			}
		}
		h, err := sp.NextHole(0)
		if err != nil || h >= a.Size {
			t.Errorf("%s: no hole: NextHole(0) = %d, %v", p, h, err)
		}
		// Every hole reads as zeros.
		buf := make([]byte, 64<<10)
		for off := h; off < a.Size; {
			d, ok, err := sp.NextData(off)
			must(t, err)
			end := a.Size
			if ok {
				end = d
			}
			for o := off; o < end; o += int64(len(buf)) {
				n, _ := f.ReadAt(buf, o)
				if n2 := min(int64(n), end-o); bytes.Count(buf[:n2], []byte{0}) != int(n2) {
					t.Fatalf("%s: hole at %d holds data", p, o)
				}
			}
			if !ok {
				break
			}
			if off, err = sp.NextHole(d); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok, _ := sp.NextData(a.Size); ok {
			t.Errorf("%s: data past the end", p)
		}
	}
}

// TestAttributeLists checks, with ntfsinfo, that the main image has the
// files whose attributes spill into extension records: the file of many
// runs ($DATA in several extents) and the file of many names ($FILE_NAMEs
// elsewhere). TestNTFS3g compares them.
func TestAttributeLists(t *testing.T) {
	testutil.RequireTool(t, "ntfsinfo")
	img := mainImage(t)
	info := string(command(t, "ntfsinfo", "-F", "/"+pathHoley, img))
	if !strings.Contains(info, "$ATTRIBUTE_LIST") || strings.Count(info, "Dumping attribute $DATA") < 3 {
		t.Errorf("%s has no attribute list or fewer than 3 $DATA extents:\n%s", pathHoley, info)
	}
	info = string(command(t, "ntfsinfo", "-F", "/"+pathManyLinks, img))
	if !strings.Contains(info, "$ATTRIBUTE_LIST") || strings.Count(info, "Dumping attribute $FILE_NAME") < manyLinks {
		t.Errorf("%s has no attribute list", pathManyLinks)
	}
	fsys := openImage(t, img)
	a, err := fsys.Stat(lookupPath(t, fsys, pathManyLinks).Ino)
	if err != nil || a.Nlink != manyLinks+1 {
		t.Errorf("%s: %d links, %v", pathManyLinks, a.Nlink, err)
	}
}

// TestInfo compares the label, UUID and type with blkid, and the
// geometry with mkfs.ntfs's arguments.
func TestInfo(t *testing.T) {
	testutil.RequireTool(t, "blkid")
	img := mainImage(t)
	info := openImage(t, img).Info()
	out := string(command(t, "blkid", "-p", "-o", "export", img))
	for _, kv := range []string{"TYPE=" + info.Type, "LABEL=" + info.Label, "UUID=" + info.UUID} {
		if !strings.Contains(out, kv+"\n") {
			t.Errorf("blkid says\n%s\nwe say %s", out, kv)
		}
	}
	if info.Type != "ntfs" || info.Label != "OvfNTFS" || info.BlockSize != 4096 || info.Size != 128<<20 || len(info.Warnings) != 0 {
		t.Errorf("info %+v", info)
	}
}

// TestConcurrent reads files and looks names up from several goroutines
// at once through one reader (the race detector watches), comparing the
// bytes with the sequential walk's.
func TestConcurrent(t *testing.T) {
	img := mainImage(t)
	want := walkImage(t, img)
	fsys := openImage(t, img)
	var paths []string
	for p, n := range want {
		if n.Attr.Mode&guestfs.TypeMask == guestfs.TypeRegular && (strings.HasPrefix(p, "compressed/") || strings.HasPrefix(p, "sizes/")) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			errs <- func() error {
				h := sha256.New()
				buf := make([]byte, 8192+g*1000) // reads that straddle compression units differently
				for i := range paths {
					p := paths[(i*7+g*13)%len(paths)]
					e := guestfs.DirEntry{Ino: fsys.Root()}
					for _, name := range strings.Split(p, "/") {
						var err error
						if e, err = fsys.Lookup(e.Ino, name); err != nil {
							return err
						}
					}
					f, err := fsys.Open(e.Ino)
					if err != nil {
						return err
					}
					h.Reset()
					for off := int64(0); off < f.Size(); off += int64(len(buf)) {
						n, err := f.ReadAt(buf, off)
						if err != nil && n < len(buf) && off+int64(n) != f.Size() {
							return err
						}
						h.Write(buf[:n])
					}
					if hex.EncodeToString(h.Sum(nil)) != want[p].SHA256 {
						return errors.New(p + ": content differs read concurrently")
					}
				}
				return nil
			}()
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d files read by 4 goroutines", len(paths))
}

// TestSmallClusters compares the fuzz seed's volume (512-byte clusters,
// so 8 KiB compression units and index blocks larger than a cluster)
// with ntfs-3g.
func TestSmallClusters(t *testing.T) {
	img := seedImage(t)
	got := walkImage(t, img)
	want := oracleTree(t, img)
	guestfstest.Equal(t, got, want, compareAll)
	if len(want) < 12 {
		t.Errorf("only %d paths", len(want))
	}
}

// TestIndexDepth checks that the directory of 10,000 names, which
// TestNTFS3g walks and looks up name by name, is a B+tree of three levels
// or more: the root, inner index blocks and leaves.
func TestIndexDepth(t *testing.T) {
	fsys := openImage(t, mainImage(t))
	n, err := fsys.node(lookupPath(t, fsys, pathBigDir).Ino)
	must(t, err)
	ix, err := fsys.openIndex(n)
	must(t, err)
	levels, ents := 1, ix.root
	for {
		e, err := parseEntry(ents, 0)
		must(t, err)
		if e.child < 0 {
			break
		}
		levels++
		if ents, err = ix.block(e.child); err != nil {
			t.Fatal(err)
		}
	}
	if levels < 3 {
		t.Errorf("the index of %d names has %d levels", bigDirEntries, levels)
	}
}
