package xfs

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestV4Proto checks v4 (crc=0) filesystems, which this kernel will not
// mount (no CONFIG_XFS_SUPPORT_V4): mkfs.xfs fills them from a protofile
// describing a host folder, and the reader is compared with that folder
// (content, types, modes, owners, targets, device numbers), with xfs_db's
// ncheck (every path's inode number) and with the attributes xfs_db's
// attr_set wrote (values of 'v's of the length asked).
func TestV4Proto(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		args      []string
		blockSize int
	}{
		{"isize256-ftype0", []string{"-m", "crc=0", "-i", "size=256", "-n", "ftype=0"}, 4096},
		{"isize512-ftype1-1k", []string{"-m", "crc=0", "-i", "size=512", "-n", "ftype=1", "-b", "size=1024"}, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testutil.RequireTool(t, "xfs_db")
			stage := tempDir(t)
			start := time.Now()
			sh(t, stage, stagingScript(5000))
			proto := filepath.Join(tempDir(t), "proto")
			writeProto(t, stage, proto)
			img := mkfs(t, 96, append(tc.args, "-p", proto)...)

			// Attributes in every attribute fork form, set by xfs_db.
			attrCmds := []string{"-x"}
			want := map[string]map[string]string{}
			setAttr := func(path, ns, name string, n int) {
				attrCmds = append(attrCmds, "-c", "path /"+path, "-c", fmt.Sprintf("attr_set -%s -v %d %s", ns, n, name))
				if want[path] == nil {
					want[path] = map[string]string{}
				}
				prefix := map[string]string{"u": "user.", "r": "trusted.", "s": "security."}[ns]
				want[path][prefix+name] = strings.Repeat("v", n)
			}
			setAttr("attrs/small", "u", "one", 5)
			setAttr("attrs/small", "r", "two", 7)
			setAttr("attrs/small", "s", "three", 1)
			for i := 0; i < 30; i++ {
				setAttr("attrs/leaf", "u", fmt.Sprintf("leaf_attribute_%d", i), 40)
			}
			for i := 0; i < 400; i++ {
				setAttr("attrs/node", "u", fmt.Sprintf("node_attribute_%d", i), 30+i%50)
			}
			// Remote values go to a file already in leaf form: xfs_db
			// 6.1 crashes now and then setting the first remote value of
			// a short-form attribute fork.
			setAttr("attrs/leaf", "u", "big", 5000)
			setAttr("attrs/leaf", "u", "bigger", 65536)
			if out, err := exec.Command(db, append(attrCmds, img)...).CombinedOutput(); err != nil {
				t.Fatalf("xfs_db attr_set: %v: %s", err, out)
			}

			t.Logf("staged and made in %v", time.Since(start))
			start = time.Now()
			fsys := openImage(t, img)
			got := guestfstest.Walk(t, fsys, 1<<20)
			t.Logf("walked in %v", time.Since(start))
			host := guestfstest.Tree(t, stage)
			requireIndex(t, img, got, "dirs/d5", tc.blockSize, "")
			requireIndex(t, img, got, "dirs/d400", tc.blockSize, "0xd2f1")
			requireIndex(t, img, got, "dirs/d5000", tc.blockSize, "0xfebe")
			guestfstest.Equal(t, got, host, guestfstest.Compare{Owner: true, Perm: true})

			for path, attrs := range want {
				for k, v := range attrs {
					if got[path].Xattrs[k] != v {
						t.Errorf("%s: xattr %s: %d bytes, want %d 'v's", path, k, len(got[path].Xattrs[k]), len(v))
					}
				}
				if len(got[path].Xattrs) != len(attrs) {
					t.Errorf("%s: %d xattrs, want %d", path, len(got[path].Xattrs), len(attrs))
				}
			}

			// Every path's inode number, as xfs_db's ncheck lists them.
			out, err := exec.Command(db, "-r", "-c", "blockget -n", "-c", "ncheck", img).Output()
			if err != nil {
				t.Fatalf("xfs_db ncheck: %v", err)
			}
			n := 0
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 2 {
					continue
				}
				ino, err := strconv.ParseUint(f[0], 10, 64)
				if err != nil {
					continue
				}
				p := strings.TrimSuffix(strings.TrimPrefix(f[1], "/"), "/.")
				if p == "." {
					p = ""
				}
				node := got[p]
				if node == nil {
					t.Errorf("ncheck lists %q, the reader does not", f[1])
					continue
				}
				if node.Attr.Ino != ino {
					t.Errorf("%s: inode %d, xfs_db says %d", f[1], node.Attr.Ino, ino)
				}
				n++
			}
			if n < len(host)-1 {
				t.Errorf("ncheck listed %d paths, the host tree has %d", n, len(host))
			}
			t.Logf("%d paths compared with the host folder, %d inode numbers with xfs_db", len(host), n)
		})
	}
}
