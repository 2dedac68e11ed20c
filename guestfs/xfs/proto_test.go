package xfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// stagingScript builds, in a host folder, a tree that an mkfs.xfs
// protofile can express (no spaces or colons in names, no hard links,
// sockets or sticky bits), for filesystems the kernel will not mount (v4).
func stagingScript(bigDir int) string {
	return `
mkdir real
cp -r /usr/share/zoneinfo real/ 2>/dev/null || true
find real -type l -delete
rm -rf real/zoneinfo/right
find real -name '* *' -delete
mkdir dirs
for n in 5 60 400 3000 ` + fmt.Sprint(bigDir) + `; do
  mkdir dirs/d$n
  (cd dirs/d$n && seq 1 $n | sed 's/^/proto_entry_number_/' | xargs touch)
done
mkdir names
touch "names/$(printf 'L%.0s' $(seq 1 255))" "names/ünïcödé_日本語_файл"
head -c 100000 /dev/urandom > names/random
ln -s file names/short_link
ln -s "$(printf 'target/%.0s' $(seq 1 30))" names/remote_link
ln -s "$(printf 'abcdefghij%.0s' $(seq 1 100))end" names/long_link
mkdir dev
mknod dev/null c 1 3
mknod dev/sda1 b 8 1
mknod dev/big c 300 200000
mkfifo dev/fifo
mkdir owners
echo o > owners/big_ids
chown 100000:200000 owners/big_ids
echo o > owners/setid
chmod 6755 owners/setid
mkdir attrs
for f in small leaf node; do echo "$f" > attrs/$f; done
chmod -R u+rwX,go+rX,go-w .
`
}

// writeProto writes an mkfs.xfs protofile describing the host folder root.
func writeProto(t testing.TB, root, proto string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("ignored\n0 0\n")
	var walk func(dir string, st *syscall.Stat_t)
	mode := func(typ byte, st *syscall.Stat_t) string {
		u, g := byte('-'), byte('-')
		if st.Mode&syscall.S_ISUID != 0 {
			u = 'u'
		}
		if st.Mode&syscall.S_ISGID != 0 {
			g = 'g'
		}
		return fmt.Sprintf("%c%c%c%03o %d %d", typ, u, g, st.Mode&0o777, st.Uid, st.Gid)
	}
	stat := func(p string) *syscall.Stat_t {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	walk = func(dir string, st *syscall.Stat_t) {
		b.WriteString(mode('d', st) + "\n")
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			st := stat(p)
			b.WriteString(e.Name() + " ")
			switch st.Mode & syscall.S_IFMT {
			case syscall.S_IFDIR:
				walk(p, st)
			case syscall.S_IFREG:
				b.WriteString(mode('-', st) + " " + p + "\n")
			case syscall.S_IFLNK:
				tg, err := os.Readlink(p)
				if err != nil {
					t.Fatal(err)
				}
				b.WriteString(mode('l', st) + " " + tg + "\n")
			case syscall.S_IFCHR, syscall.S_IFBLK:
				typ := byte('c')
				if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
					typ = 'b'
				}
				b.WriteString(fmt.Sprintf("%s %d %d\n", mode(typ, st), (st.Rdev>>8)&0xfff, st.Rdev&0xff|(st.Rdev>>12)&0xfff00))
			case syscall.S_IFIFO:
				b.WriteString(mode('p', st) + "\n")
			default:
				t.Fatalf("%s: no protofile form", p)
			}
		}
		b.WriteString("$\n")
	}
	walk(root, stat(root))
	b.WriteString("$\n")
	if err := os.WriteFile(proto, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
