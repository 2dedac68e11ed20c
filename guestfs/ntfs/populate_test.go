package ntfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Paths of the main image that tests look at one by one.
const (
	pathSparse     = "sparse/holes.bin"
	pathHoley      = "sparse/many-runs.bin"
	pathCompDir    = "compressed"
	pathCompSparse = "compressed/sparse-tail.bin"
	pathBigStream  = "streams/big-stream.txt"
	pathUNCLink    = "reparse/unc-link"
	pathVolLink    = "reparse/volume-junction"
	pathLongDOS    = "Long File Name.txt"
	pathDOSDir     = "Program Files"
	pathBigDir     = "bigdir"
	bigDirEntries  = 10000
	pathManyLinks  = "links/target"
	manyLinks      = 40
)

// sparseData is where the sparse file holds data, in 12 MiB: holes between.
var sparseData = []struct{ off, n int64 }{{0, 5000}, {5 << 20, 1 << 20}, {12<<20 - 4096, 4096}}

// wslMeta is the POSIX owner and mode WSL keeps in the extended
// attributes $LXUID, $LXGID and $LXMOD, which the test writes through
// ntfs-3g's system.ntfs_ea and the reader shows; ntfs-3g does not show
// them, so the test compares with these.
var wslMeta = map[string]struct{ uid, gid, mode uint32 }{
	"wsl/fifo": {1000, 100, 0o640}, "wsl/chr": {0, 5, 0o600}, "wsl/blk": {0, 6, 0o660},
	"wsl/sock": {1000, 1000, 0o755}, "wsl/regular": {1001, 1002, 0o600},
}

// wslDev is the device numbers of the WSL device files.
var wslDev = map[string][2]uint32{"wsl/chr": {4, 5}, "wsl/blk": {259, 70000}}

// eaList encodes extended attributes as Windows' FILE_FULL_EA_INFORMATION,
// the form ntfs-3g's system.ntfs_ea takes (every entry, the last too,
// with the offset of the next).
func eaList(eas ...struct {
	name  string
	value []byte
}) []byte {
	var out []byte
	for _, e := range eas {
		b := make([]byte, 8, 8+len(e.name)+1+len(e.value)+3)
		b[5] = byte(len(e.name))
		binary.LittleEndian.PutUint16(b[6:], uint16(len(e.value)))
		b = append(append(append(b, e.name...), 0), e.value...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		binary.LittleEndian.PutUint32(b, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

func le32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// buildMainImage makes a 128 MiB volume with 4 KiB clusters and fills it,
// through ntfs-3g, with real files from /usr/share and every kind of thing
// the reader must show.
func buildMainImage(t testing.TB, img string) {
	mkfsNTFS(t, img, 128<<20, "-c", "4096", "-L", "OvfNTFS")

	dir, unmount := ntfs3g(t, img, "streams_interface=xattr")
	defer func() { unmount() }()
	p := func(rel string) string { return filepath.Join(dir, rel) }

	// A few thousand real files, with their symlinks (which ntfs-3g
	// stores as Interix symlinks).
	n := copyTree(t, "/usr/share/zoneinfo", p("usr/zoneinfo"), 4<<20)
	n += copyTree(t, "/usr/share/i18n", p("usr/i18n"), 6<<20)
	n += copyTree(t, "/usr/share/doc", p("usr/doc"), 8<<20)
	if n < 2000 {
		t.Fatalf("only %d files copied from /usr/share", n)
	}

	// Names.
	writeFile(t, p("names/"+strings.Repeat("L", 255)), []byte("longest ASCII name"))
	writeFile(t, p("names/"+strings.Repeat("é", 127)), []byte("longest name of two-byte characters"))
	for _, name := range []string{"café.txt", "日本語のファイル名", "emoji-😀-surrogates.txt", "Ωmega Σ", "with space", ".dotfile", "MiXeD.CaSe", "abc", "ABC", "Abc"} {
		writeFile(t, p("names/"+name), []byte("name "+name))
	}
	must(t, os.MkdirAll(p("names/Ünïcödé dir/sub"), 0o755))
	writeFile(t, p("names/Ünïcödé dir/sub/f"), []byte("deep"))

	// Files of every size class: empty, resident in the MFT record,
	// just over, and cluster boundaries.
	for _, size := range []int{0, 1, 600, 700, 1000, 4095, 4096, 4097, 65536, 200001} {
		b := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(b)
		writeFile(t, p(fmt.Sprintf("sizes/%d.bin", size)), b)
	}

	// Hard links: in one directory and across two, and one file with so
	// many long names that they spill into extension records (an
	// $ATTRIBUTE_LIST).
	writeFile(t, p("links/a"), []byte("linked file\n"))
	must(t, os.MkdirAll(p("links/other"), 0o755))
	must(t, os.Link(p("links/a"), p("links/b")))
	must(t, os.Link(p("links/a"), p("links/other/c")))
	writeFile(t, p(pathManyLinks), []byte("a file of many names\n"))
	for i := 0; i < manyLinks; i++ {
		must(t, os.Link(p(pathManyLinks), p(fmt.Sprintf("links/many-%03d-%s", i, strings.Repeat("x", 100)))))
	}

	// Symlinks as ntfs-3g makes them (Interix), and special files.
	must(t, os.MkdirAll(p("specials"), 0o755))
	must(t, os.Symlink("../links/a", p("specials/rel-link")))
	must(t, os.Symlink("/etc/passwd", p("specials/abs-link")))
	must(t, os.Symlink("nowhere/at/all", p("specials/dangling")))
	must(t, os.Symlink("日本/ünï", p("specials/unicode-link")))
	must(t, unix.Mkfifo(p("specials/fifo"), 0o644))
	must(t, unix.Mknod(p("specials/null"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("specials/sda1"), unix.S_IFBLK|0o644, int(unix.Mkdev(8, 1))))
	makeSocket(t, p("specials/sock"))

	// Windows symlinks and junctions (reparse points).
	writeFile(t, p("reparse/target/dir/file"), []byte("reparse target\n"))
	for _, l := range []struct {
		name, sub string
		tag       uint32
		relative  bool
		dir       bool
	}{
		{"rel-symlink", `target\dir\file`, tagSymlink, true, false},
		{"abs-symlink", `\??\C:\reparse\target\dir\file`, tagSymlink, false, false},
		{"junction", `\??\C:\reparse\target\dir`, tagMountPoint, false, true},
		{"target/deep-junction", `\??\C:\reparse\target`, tagMountPoint, false, true},
		{"unc-link", `\??\UNC\server\share\file`, tagSymlink, false, false},
		{"volume-junction", `\??\Volume{01234567-89ab-cdef-0123-456789abcdef}\x`, tagMountPoint, false, true},
	} {
		if l.dir {
			must(t, os.Mkdir(p("reparse/"+l.name), 0o755))
		} else {
			writeFile(t, p("reparse/"+l.name), nil)
		}
		print := strings.TrimPrefix(l.sub, `\??\`)
		setReparse(t, p("reparse/"+l.name), reparseLink(l.tag, l.sub, print, l.relative))
	}

	// A sparse file.
	must(t, os.MkdirAll(filepath.Dir(p(pathSparse)), 0o755))
	f, err := os.Create(p(pathSparse))
	must(t, err)
	for i, d := range sparseData {
		b := bytes.Repeat([]byte{byte('a' + i)}, int(d.n))
		_, err := f.WriteAt(b, d.off)
		must(t, err)
	}
	must(t, f.Close())

	// A file of 3,200 runs, clusters of data between one-cluster holes: its runlist
	// fills several extension records, listed by an $ATTRIBUTE_LIST.
	f, err = os.Create(p(pathHoley))
	must(t, err)
	block := make([]byte, 4096)
	rnd := rand.New(rand.NewSource(3))
	for i := int64(0); i < 1600; i++ {
		rnd.Read(block)
		_, err := f.WriteAt(block, i<<13)
		must(t, err)
	}
	must(t, f.Close())

	// Compressed files: ntfs-3g compresses what is written in a directory
	// with the compressed attribute.
	must(t, os.Mkdir(p(pathCompDir), 0o755))
	setAttrib(t, p(pathCompDir), faCompressed)
	copyTree(t, "/usr/share/i18n/locales", p(pathCompDir+"/locales"), 600<<10)
	writeFile(t, p(pathCompDir+"/zeros.bin"), make([]byte, 1<<20+123))
	noise := make([]byte, 300000)
	rand.New(rand.NewSource(7)).Read(noise)
	writeFile(t, p(pathCompDir+"/random.bin"), noise)
	text := bytes.Repeat([]byte("compressible text, line after line. "), 20000)
	writeFile(t, p(pathCompDir+"/text.txt"), text)
	f, err = os.Create(p(pathCompSparse))
	must(t, err)
	_, err = f.WriteAt(text[:100000], 3<<20)
	must(t, err)
	must(t, f.Close())

	// Alternate data streams, as user.* xattrs through ntfs-3g.
	writeFile(t, p("streams/file.txt"), []byte("main data\n"))
	must(t, unix.Setxattr(p("streams/file.txt"), "user.small", []byte("a small stream"), 0))
	must(t, unix.Setxattr(p("streams/file.txt"), "user.empty", nil, 0))
	must(t, unix.Setxattr(p("streams/file.txt"), "user.ströme", []byte("non-ASCII stream name"), 0))
	big := bytes.Repeat([]byte("0123456789abcdef"), 60<<10/16)
	must(t, unix.Setxattr(p("streams/file.txt"), "user.sixty-kib", big, 0))
	must(t, os.Mkdir(p("streams/dir"), 0o755))
	must(t, unix.Setxattr(p("streams/dir"), "user.on-a-dir", []byte("directory stream"), 0))
	writeFile(t, p(pathBigStream), []byte("has a stream over 64 KiB\n"))

	// Windows attributes, and DOS 8.3 names.
	writeFile(t, p("attrs/readonly"), []byte("read-only file"))
	setAttrib(t, p("attrs/readonly"), faReadOnly|faArchive)
	writeFile(t, p("attrs/hidden"), []byte("hidden file"))
	setAttrib(t, p("attrs/hidden"), faHidden)
	writeFile(t, p("attrs/system"), []byte("a system file that is no Interix one"))
	setAttrib(t, p("attrs/system"), faSystem|faHidden)
	writeFile(t, p(pathLongDOS), []byte("has an 8.3 alias"))
	must(t, unix.Setxattr(p(pathLongDOS), "system.ntfs_dos_name", []byte("LONGFI~1.TXT"), 0))
	must(t, os.Mkdir(p(pathDOSDir), 0o755))
	writeFile(t, p(pathDOSDir+"/inside.txt"), []byte("in a directory with an 8.3 alias"))
	must(t, unix.Setxattr(p(pathDOSDir), "system.ntfs_dos_name", []byte("PROGRA~1"), 0))

	// A directory of 10,000 names: an index B+tree of several levels.
	must(t, os.Mkdir(p(pathBigDir), 0o755))
	for i := 0; i < bigDirEntries; i++ {
		fd, err := unix.Open(p(fmt.Sprintf("%s/entry-%05d-%s", pathBigDir, i, strings.Repeat("n", i%40))), unix.O_CREAT|unix.O_WRONLY, 0o644)
		must(t, err)
		unix.Close(fd)
	}
	unmount()

	// WSL's special files: ntfs-3g writes them as WSL does when asked.
	dir, unmount = ntfs3g(t, img, "special_files=wsl")
	must(t, os.Mkdir(p("wsl"), 0o755))
	must(t, os.Symlink("../links/a", p("wsl/symlink")))
	must(t, unix.Mkfifo(p("wsl/fifo"), 0o644))
	must(t, unix.Mknod(p("wsl/chr"), unix.S_IFCHR|0o644, int(unix.Mkdev(wslDev["wsl/chr"][0], wslDev["wsl/chr"][1]))))
	must(t, unix.Mknod(p("wsl/blk"), unix.S_IFBLK|0o644, int(unix.Mkdev(wslDev["wsl/blk"][0], wslDev["wsl/blk"][1]))))
	makeSocket(t, p("wsl/sock"))
	writeFile(t, p("wsl/regular"), []byte("a file with WSL metadata"))
	for path, m := range wslMeta {
		type ea = struct {
			name  string
			value []byte
		}
		eas := []ea{{"$LXUID", le32(m.uid)}, {"$LXGID", le32(m.gid)}, {"$LXMOD", le32(m.mode)}}
		if d, ok := wslDev[path]; ok {
			eas = append(eas, ea{"$LXDEV", le32(d[0], d[1])})
		}
		must(t, unix.Setxattr(p(path), "system.ntfs_ea", eaList(eas...), 0))
	}
	unmount()

	// A stream over 64 KiB, written through ntfs-3g's file:stream names.
	dir, unmount = ntfs3g(t, img, "streams_interface=windows")
	writeFile(t, p(pathBigStream+":big"), bytes.Repeat([]byte("big stream "), 10000))
	unmount()
}

// makeSocket leaves a Unix socket at p.
func makeSocket(t testing.TB, p string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	must(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
}

func mainImage(t testing.TB) string {
	return cachedImage(t, "main", buildMainImage)
}

// buildSeedImage makes the small volume the fuzz target starts from: 2
// MiB with 512-byte clusters (so that compression units are 8 KiB), and a
// little of everything.
func buildSeedImage(t testing.TB, img string) {
	mkfsNTFS(t, img, 2<<20, "-c", "512", "-L", "seed")
	dir, unmount := ntfs3g(t, img, "streams_interface=xattr")
	defer unmount()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	// Names long enough for the directory to need an index block.
	for i := 0; i < 4; i++ {
		writeFile(t, p(fmt.Sprintf("d/%d%s", i, strings.Repeat("é", 60))), []byte(fmt.Sprint(i)))
	}
	writeFile(t, p("d/big"), bytes.Repeat([]byte("0123456789"), 100))
	must(t, os.Link(p("d/big"), p("hl")))
	must(t, os.Symlink("d/big", p("sl")))
	must(t, unix.Mkfifo(p("ff"), 0o644))
	must(t, unix.Setxattr(p("d/big"), "user.s", []byte("stream"), 0))
	must(t, os.Mkdir(p("jn"), 0o755))
	setReparse(t, p("jn"), reparseLink(tagMountPoint, `\??\C:\d`, `C:\d`, false))
	must(t, os.Mkdir(p("c"), 0o755))
	setAttrib(t, p("c"), faCompressed)
	writeFile(t, p("c/z"), bytes.Repeat([]byte("compress me "), 1000))
	f, err := os.Create(p("sp"))
	must(t, err)
	_, err = f.WriteAt([]byte("end"), 100000)
	must(t, err)
	must(t, f.Close())
}

func seedImage(t testing.TB) string {
	return cachedImage(t, "seed", buildSeedImage)
}

// Paths of the image the hostile tests damage.
const (
	hostileDeep  = "deep"    // a directory of three index levels
	hostileLinks = "links/f" // a file whose names spill into extension records
	hostileComp  = "c/text"  // a compressed file
	hostileDeepN = 1500
)

// buildHostileImage makes a 6 MiB volume with the structures the hostile
// tests damage one by one.
func buildHostileImage(t testing.TB, img string) {
	mkfsNTFS(t, img, 6<<20, "-c", "4096")
	dir, unmount := ntfs3g(t, img, "")
	defer unmount()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	must(t, os.Mkdir(p(hostileDeep), 0o755))
	for i := 0; i < hostileDeepN; i++ {
		fd, err := unix.Open(p(fmt.Sprintf("%s/%04d-%s", hostileDeep, i, strings.Repeat("n", 100))), unix.O_CREAT|unix.O_WRONLY, 0o644)
		must(t, err)
		unix.Close(fd)
	}
	writeFile(t, p(hostileLinks), []byte("many names"))
	for i := 0; i < 30; i++ {
		must(t, os.Link(p(hostileLinks), p(fmt.Sprintf("links/%02d-%s", i, strings.Repeat("x", 120)))))
	}
	must(t, os.Mkdir(p("c"), 0o755))
	setAttrib(t, p("c"), faCompressed)
	writeFile(t, p(hostileComp), bytes.Repeat([]byte("compressible text "), 10000))
}

func hostileImage(t testing.TB) string {
	return cachedImage(t, "hostile", buildHostileImage)
}
