package inspect

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/internal/hostfs"
)

// tree assembles a guest's root in a folder, from the host's real files
// where the test says so.
type tree struct {
	t   *testing.T
	dir string
}

func newTree(t *testing.T) *tree { return &tree{t: t, dir: t.TempDir()} }

func (g *tree) path(p string) string { return filepath.Join(g.dir, p) }

func (g *tree) mkdir(p string) {
	g.t.Helper()
	if err := os.MkdirAll(g.path(p), 0o755); err != nil {
		g.t.Fatal(err)
	}
}

func (g *tree) write(p string, b []byte) {
	g.t.Helper()
	g.mkdir(filepath.Dir(p))
	if err := os.WriteFile(g.path(p), b, 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// copyHost copies a host file (following the host's links) into the tree.
func (g *tree) copyHost(host, p string) []byte {
	g.t.Helper()
	b, err := os.ReadFile(host)
	if err != nil {
		g.t.Fatalf("the host's %s: %v", host, err)
	}
	g.write(p, b)
	return b
}

func (g *tree) link(target, p string) {
	g.t.Helper()
	g.mkdir(filepath.Dir(p))
	if err := os.Symlink(target, g.path(p)); err != nil {
		g.t.Fatal(err)
	}
}

// volume opens the tree as a guest filesystem through hostfs, with the
// UUID and label a real filesystem's superblock would give.
func (g *tree) volume(name, uuid, label string) Volume {
	g.t.Helper()
	h, err := hostfs.Open(g.dir)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { h.Close() })
	return Volume{Name: name, FS: withID{h, uuid, label}}
}

// withID is a host folder that reports a filesystem UUID and label, as
// blkid would print them for the volume it stands for.
type withID struct {
	*hostfs.FS
	uuid, label string
}

func (w withID) Info() guestfs.Info {
	i := w.FS.Info()
	i.UUID, i.Label = w.uuid, w.label
	return i
}

// shellRelease is the oracle for os-release: the host's sh sources the
// file, as os-release(5) says a shell may, and prints the variables.
func shellRelease(t *testing.T, file string, vars ...string) map[string]string {
	t.Helper()
	script := `. "$1"; shift; for v; do eval "printf '%s\0' \"\${$v}\""; done`
	out, err := exec.Command("sh", append([]string{"-c", script, "sh", file}, vars...)...).Output()
	if err != nil {
		t.Fatalf("sh sourcing %s: %v", file, err)
	}
	vals := strings.Split(string(out), "\x00")
	m := map[string]string{}
	for i, v := range vars {
		m[v] = vals[i]
	}
	return m
}

// findmntFstab is the oracle for fstab: util-linux's findmnt reading the
// file as a table.
func findmntFstab(t *testing.T, file string) []Mount {
	t.Helper()
	out, err := exec.Command("findmnt", "--tab-file", file, "-l", "-J", "-o", "SOURCE,TARGET,FSTYPE,OPTIONS").Output()
	if err != nil {
		t.Fatalf("findmnt --tab-file %s: %v", file, err)
	}
	var doc struct {
		Filesystems []struct {
			Source, Target, Fstype string
			Options                *string
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var ms []Mount
	for _, f := range doc.Filesystems {
		m := Mount{Spec: f.Source, Path: f.Target, Type: f.Fstype}
		if f.Options != nil {
			m.Options = *f.Options
		}
		ms = append(ms, m)
	}
	return ms
}

// hostLine is a host file's first line, read plainly.
func hostLine(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

func hostUname(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func hasWarning(o OS, sub string) bool {
	for _, w := range o.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

// readHostHead reads the start of a host file, for fuzz seeds.
func readHostHead(p string, n int) ([]byte, error) {
	b, err := os.ReadFile(p)
	if len(b) > n {
		b = b[:n]
	}
	return b, err
}
