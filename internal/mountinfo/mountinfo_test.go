package mountinfo

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// sampleMountinfo is a mount table as the kernel writes it, with a path
// holding escaped characters and a mount point mounted on twice.
var sampleMountinfo = `22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 22 8:1 / /mnt/data rw,relatime shared:5 - ext4 /dev/sda1 rw
31 22 0:55 / /mnt/data\040b rw,nosuid,nodev,relatime shared:6 - fuse.ovfmount /srv/my\040app.ova ro,user_id=0,group_id=0
32 22 0:56 / /mnt/tab\011nl\012back\134slash ro shared:7 - fuse.ovfmount x ro
33 22 0:57 / /mnt/app rw shared:8 - fuse.ovfmount first.ova ro
34 33 0:58 / /mnt/app rw shared:9 - fuse.ovfmount second.ova ro
35 22 0:59 / /mnt/odd\9 rw shared:10 - tmpfs tmpfs rw
36 22 259:65536 / /mnt/big rw shared:11 - ext4 /dev/nvme0n1p1 rw
37 22 bogus / /mnt/bad rw shared:12 - tmpfs tmpfs rw
`

func TestParseMountDevice(t *testing.T) {
	long := "40 22 0:60 / /mnt/long rw - overlay overlay rw,lowerdir=" + strings.Repeat("/x", 70000) + "\n"
	for _, tc := range []struct {
		name, text, dir string
		major, minor    uint32
		err             string
	}{
		{"plain", sampleMountinfo, "/mnt/data", 8, 1, ""},
		{"root", sampleMountinfo, "/", 0, 21, ""},
		{"escaped space, not its prefix", sampleMountinfo, "/mnt/data b", 0, 55, ""},
		{"tab, newline and backslash", sampleMountinfo, "/mnt/tab\tnl\nback\\slash", 0, 56, ""},
		{"the last mount shadows the first", sampleMountinfo, "/mnt/app", 0, 58, ""},
		{"a backslash that is no escape stays", sampleMountinfo, `/mnt/odd\9`, 0, 59, ""},
		{"minor above 255", sampleMountinfo, "/mnt/big", 259, 65536, ""},
		{"line past bufio.Scanner's limit", sampleMountinfo + long, "/mnt/long", 0, 60, ""},
		{"no final newline, bad device number", strings.TrimSuffix(sampleMountinfo, "\n"), "/mnt/bad", 0, 0, `device number "bogus" is not major:minor`},
		{"not mounted", sampleMountinfo, "/mnt/none", 0, 0, "no mount at /mnt/none"},
		{"a sub-folder of a mount is not a mount", sampleMountinfo, "/mnt/data/sub", 0, 0, "no mount at /mnt/data/sub"},
		{"empty table", "", "/", 0, 0, "no mount at /"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			major, minor, err := parseMountDevice(strings.NewReader(tc.text), tc.dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %d:%d, %v; want an error with %q", major, minor, err, tc.err)
				}
				return
			}
			if err != nil || major != tc.major || minor != tc.minor {
				t.Fatalf("got %d:%d, %v; want %d:%d", major, minor, err, tc.major, tc.minor)
			}
		})
	}
}

// TestDeviceMatchesStat checks the real table against stat(2) on /proc
// (always a mount, whose st_dev is its own), and that a plain folder is
// no mount.
func TestDeviceMatchesStat(t *testing.T) {
	major, minor, err := Device("/proc/")
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/proc", &st); err != nil {
		t.Fatal(err)
	}
	if major != unix.Major(st.Dev) || minor != unix.Minor(st.Dev) {
		t.Errorf("/proc: mountinfo says %d:%d, stat says %d:%d", major, minor, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	if _, _, err := Device(t.TempDir()); !errors.Is(err, ErrNotMounted) || !strings.Contains(err.Error(), "no mount at") {
		t.Errorf("a plain folder: %v, want no mount", err)
	}
}
