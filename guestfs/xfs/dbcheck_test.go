package xfs

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// dbFields prints inode fields with xfs_db, the independent view of which
// on-disk forms a test image holds, so that a test can make sure it
// exercised the forms it claims to (a btree-format file, a node directory).
func dbFields(t testing.TB, img string, ino uint64, fields ...string) map[string]string {
	t.Helper()
	db := testutil.RequireTool(t, "xfs_db")
	args := []string{"-r", "-c", fmt.Sprintf("inode %d", ino)}
	for _, f := range fields {
		args = append(args, "-c", "print "+f)
	}
	out, err := exec.Command(db, append(args, img)...).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_db: %v: %s", err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " = "); ok {
			m[k] = v
		}
	}
	return m
}

// requireForm fails the test unless xfs_db shows path's inode with the
// given data fork format (and, for btree, at least the given bmbt level).
func requireForm(t testing.TB, img string, got map[string]*guestfstest.Node, path, format string, level int) {
	t.Helper()
	n := got[path]
	if n == nil {
		t.Fatalf("%s: not found", path)
	}
	m := dbFields(t, img, n.Attr.Ino, "core.format", "u3.bmbt.level", "u.bmbt.level")
	if !strings.Contains(m["core.format"], format) {
		t.Errorf("%s: xfs_db says format %q, the test needs %s", path, m["core.format"], format)
	}
	if level > 0 {
		lv := m["u3.bmbt.level"]
		if lv == "" {
			lv = m["u.bmbt.level"]
		}
		if lv < fmt.Sprint(level) {
			t.Errorf("%s: xfs_db says bmbt level %q, the test needs %d", path, lv, level)
		}
	}
}

// requireIndex fails the test unless xfs_db shows, at the start of the
// leaf space of directory path (32 GiB in, blockSize blocks), a block with
// the given magic: 0x3df1 a leaf directory, 0x3ebe a node or B+tree one,
// "" none (a short-form or single-block directory).
func requireIndex(t testing.TB, img string, got map[string]*guestfstest.Node, path string, blockSize int, magic string) {
	t.Helper()
	db := testutil.RequireTool(t, "xfs_db")
	out, _ := exec.Command(db, "-r", "-c", fmt.Sprintf("inode %d", got[path].Attr.Ino), "-c", fmt.Sprintf("dblock %d", (1<<35)/blockSize), "-c", "print", img).CombinedOutput()
	m := regexp.MustCompile(`hdr\.info\.(?:hdr\.)?magic = (0x[0-9a-f]+)`).FindStringSubmatch(string(out))
	has := ""
	if m != nil {
		has = m[1]
	}
	if has != magic {
		t.Errorf("%s: xfs_db shows index block magic %q, the test needs %q", path, has, magic)
	}
}
