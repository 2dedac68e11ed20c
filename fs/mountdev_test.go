package fs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/internal/mountinfo"
)

// TestReadAheadDevice checks that the device mountinfo.SetReadAhead finds in the
// mount table is the FUSE mount's own, reached through a symlinked parent
// and a path that is not clean.
func TestReadAheadDevice(t *testing.T) {
	p, _ := testPackage(t, map[string][]byte{"appliance.ovf": []byte("<Envelope/>")})
	mnt := testMount(t, p.Entries)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(filepath.Dir(mnt), link); err != nil {
		t.Fatal(err)
	}
	major, minor, err := mountinfo.Device(link + "/./" + filepath.Base(mnt))
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if major != unix.Major(st.Dev) || minor != unix.Minor(st.Dev) {
		t.Errorf("mountinfo says %d:%d, stat says %d:%d", major, minor, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
}
