package lvm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// lvmEnv runs the real LVM tools on sparse image files attached to loop
// devices, with a private configuration (LVM_SYSTEM_DIR) that sees only
// those devices, creates no device-mapper devices (--driverloaded n, -an,
// -Zn) and touches none of the host's LVM state.
type lvmEnv struct {
	t    testing.TB
	dir  string
	imgs []string
	devs []string
}

// newLVM makes one image of each size and attaches each to a loop device.
func newLVM(t testing.TB, sizes ...int64) *lvmEnv {
	t.Helper()
	testutil.RequireTool(t, "pvcreate")
	testutil.RequireTool(t, "losetup")
	e := &lvmEnv{t: t, dir: t.TempDir()}
	for i, size := range sizes {
		img := filepath.Join(e.dir, fmt.Sprintf("pv%d.img", i))
		f, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
		if err != nil {
			msg := fmt.Sprintf("loop devices cannot be used here, so LVM's tools cannot run: losetup: %v: %s", err, out)
			if os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		dev := strings.TrimSpace(string(out))
		e.imgs = append(e.imgs, img)
		e.devs = append(e.devs, dev)
		t.Cleanup(func() {
			if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
				t.Errorf("losetup -d %s: %v: %s", dev, err, out)
			}
		})
	}
	e.filter(e.devs...)
	return e
}

// filter writes the configuration so that LVM sees only devs.
func (e *lvmEnv) filter(devs ...string) {
	var accept []string
	for _, d := range devs {
		accept = append(accept, fmt.Sprintf(`"a|^%s$|"`, regexp.QuoteMeta(d)))
	}
	f := strings.Join(append(accept, `"r|.*|"`), ", ")
	conf := fmt.Sprintf(`devices {
	filter = [ %s ]
	global_filter = [ %s ]
	obtain_device_list_from_udev = 0
	use_devicesfile = 0
	hints = "none"
}
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
global { locking_dir = %q event_activation = 0 }
backup { backup = 0 archive = 0 }
`, f, f, filepath.Join(e.dir, "lock"))
	if err := os.MkdirAll(filepath.Join(e.dir, "lock"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "lvm.conf"), []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// lvm runs an LVM command and returns its stdout.
func (e *lvmEnv) lvm(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.lvmErr(args...)
	if err != nil {
		e.t.Fatalf("lvm %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (e *lvmEnv) lvmErr(args ...string) (string, string, error) {
	cmd := exec.Command("lvm", append(args, "--driverloaded", "n")...)
	cmd.Env = append(os.Environ(), "LVM_SYSTEM_DIR="+e.dir, "LVM_SUPPRESS_FD_WARNINGS=1", "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// report runs an LVM report command with --reportformat json and returns
// the rows of its first report.
func (e *lvmEnv) report(kind string, args ...string) []map[string]string {
	e.t.Helper()
	out := e.lvm(append(args, "--reportformat", "json", "--units", "b", "--nosuffix")...)
	var v struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		e.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if len(v.Report) == 0 {
		return nil
	}
	return v.Report[0][kind]
}

func atoi(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return n
}

// readPVs reads the PV of each image file.
func (e *lvmEnv) readPVs(idx ...int) []*PV {
	e.t.Helper()
	var pvs []*PV
	for _, i := range idx {
		f, err := os.Open(e.imgs[i])
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { f.Close() })
		st, _ := f.Stat()
		pv, err := ReadPV(f, st.Size())
		if err != nil {
			e.t.Fatalf("ReadPV %s: %v", e.imgs[i], err)
		}
		pvs = append(pvs, pv)
	}
	return pvs
}

func all(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
