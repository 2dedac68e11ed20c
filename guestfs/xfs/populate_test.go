package xfs

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// populateScript fills a mounted XFS with what the reader must get right:
// real files, every directory form (short-form through B+tree), short,
// long and remote symlinks, hard links, sparse and preallocated files, a
// fragmented file whose extents need a btree of depth fragDepth or more,
// device nodes, FIFOs, sockets, extended attributes in every attribute
// fork form, ACLs, file flags, nanosecond and far-off times, and large
// owner IDs; with real, a few thousand files from /usr/share. bigtime says whether times past 2038 can be stored.
func populateScript(real bool, fragExtents, bigDir int, bigtime bool) string {
	var b strings.Builder
	if real {
		b.WriteString(`
mkdir -p real
for d in /usr/share/zoneinfo /usr/share/perl5 /usr/share/alsa; do
  if [ -d "$d" ]; then cp -a "$d" real/; fi
done
`)
	}
	b.WriteString(`
mkdir dirs
mkdir dirs/empty
for n in 5 60 400 3000; do
  mkdir dirs/d$n
  (cd dirs/d$n && seq 1 $n | sed 's/^/name_number_/' | xargs touch)
done
mkdir dirs/big
(cd dirs/big && seq 1 ` + fmt.Sprint(bigDir) + ` | sed 's/^/a_somewhat_longer_entry_name_in_a_big_directory_/' | xargs touch)
# remove every third name so that the big directory has free space and stale leaf entries
(cd dirs/big && seq 1 3 ` + fmt.Sprint(bigDir) + ` | sed 's/^/a_somewhat_longer_entry_name_in_a_big_directory_/' | xargs rm -f)
mkdir names
touch "names/$(printf 'L%.0s' $(seq 1 255))"
touch "names/ünïcödé_日本語_файл" "names/sp ace" "names/-dash" "names/x"
echo data > names/file
ln -s file names/short_link
ln -s "$(printf 'target/%.0s' $(seq 1 30))" names/remote_link
ln -s "$(printf 'abcdefghij%.0s' $(seq 1 100))end" names/long_link
ln -s /nonexistent/absolute names/dangling
mkdir links
echo shared > links/a
ln links/a links/b
ln links/a names/c
mkdir sparse
truncate -s 1G sparse/empty_1g
dd if=/dev/urandom of=sparse/tail bs=4k count=3 seek=5000 status=none
dd if=/dev/urandom of=sparse/head_and_tail bs=4k count=2 status=none
dd if=/dev/urandom of=sparse/head_and_tail bs=4k count=2 seek=900 conv=notrunc status=none
truncate -s 10M sparse/head_and_tail
fallocate -l 1M sparse/unwritten
fallocate -l 2M sparse/mixed
dd if=/dev/urandom of=sparse/mixed bs=4k count=4 seek=100 conv=notrunc status=none
cmds=()
for i in $(seq 0 2 $((` + fmt.Sprint(fragExtents) + `*2))); do cmds+=(-c "pwrite -q -S $((i % 250 + 1)) $((i*4096)) 4096"); done
xfs_io -f "${cmds[@]}" sparse/fragmented
mkdir dev
mknod dev/null c 1 3
mknod dev/sda1 b 8 1
mknod dev/big c 300 200000
mkfifo dev/fifo
mkdir attrs
echo x > attrs/small
setfattr -n user.comment -v hello attrs/small
setfattr -n trusted.secret -v root-only attrs/small
setfattr -n security.label -v sec attrs/small
echo x > attrs/leaf
for i in $(seq 1 40); do setfattr -n user.attr_$i -v "value number $i with some padding to fill space" attrs/leaf; done
echo x > attrs/node
echo x > attrs/remote
setfattr -n user.big -v "$(head -c 30000 /dev/zero | tr '\0' 'R')" attrs/remote
setfattr -n user.small -v tiny attrs/remote
echo x > attrs/acl
# an ACL with a named user and group, written in the Linux xattr format
setfattr -n system.posix_acl_access -v 0x0200000001000600ffffffff02000700d204000004000400ffffffff08000500e110000010000700ffffffff20000400ffffffff attrs/acl
mkdir attrs/defacl
setfattr -n system.posix_acl_default -v 0x0200000001000700ffffffff04000500ffffffff20000000ffffffff attrs/defacl
mkdir flags
echo i > flags/immutable
echo a > flags/append
echo d > flags/nodump
chattr +d flags/nodump
chattr +a flags/append
chattr +i flags/immutable
mkdir owners
echo o > owners/big_ids
chown 100000:200000 owners/big_ids
echo o > owners/setid
chmod 6755 owners/setid
mkdir owners/sticky
chmod 1777 owners/sticky
mkdir times
echo t > times/nano
touch -d '2001-02-03 04:05:06.123456789' times/nano
echo t > times/old
touch -d '1950-06-07 08:09:10.5' times/old
`)
	if bigtime {
		b.WriteString(`echo t > times/future
touch -d '2200-01-02 03:04:05.987654321' times/future
`)
	}
	return b.String()
}

// populateGo adds what is quicker or only possible from Go: a socket, and
// hundreds of attributes on one file (a node attribute fork).
func populateGo(t testing.TB, dir string) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(dir, "dev/sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	node := filepath.Join(dir, "attrs/node")
	for i := 1; i <= 700; i++ {
		v := fmt.Sprintf("value_%d_%s", i, strings.Repeat("p", i%90))
		if err := unix.Setxattr(node, fmt.Sprintf("user.many_attribute_name_%d", i), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
}
