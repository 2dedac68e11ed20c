package appliance

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// TestRealFixtures opens every real file other projects' tools made, as
// the mount, info and verify do, and checks the plan without a mount (as
// restic tests its FUSE nodes): every file of the package is an entry;
// every entry reads whole, member bytes as tar -x (or the file itself)
// gives them and raw views as qemu-img convert -O raw writes them; every
// byte an entry reads comes from members the plan names; and a file that
// is not a package is refused as one.
func TestRealFixtures(t *testing.T) {
	fx := testutil.RealFixtures(t)
	testutil.RequireTool(t, "qemu-img")
	testutil.RequireTool(t, "tar")
	var all []string
	filepath.Walk(fx, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && !strings.HasSuffix(p, ".md") {
			all = append(all, p)
		}
		return nil
	})
	if len(all) < 20 {
		t.Fatalf("only %d fixtures under %s", len(all), fx)
	}
	opened := 0
	for _, path := range all {
		rel, _ := filepath.Rel(fx, path)
		t.Run(rel, func(t *testing.T) {
			p, err := OpenPath(path, Options{Integrity: integrity.Options{Mode: integrity.Lazy}})
			if err != nil {
				if !errors.Is(err, ErrNotPackage) {
					t.Fatalf("neither a package nor refused as none: %v", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			defer p.Close()
			opened++
			checkPlan(t, p, path)
		})
	}
	if opened < len(all)/2 {
		t.Errorf("only %d of %d fixtures opened as packages", opened, len(all))
	}
}

// checkPlan checks a package's plan against the independent tools.
func checkPlan(t *testing.T, p *Package, path string) {
	t.Helper()
	files := map[string]bool{}
	for _, m := range p.Archive.Files() {
		files[m.Name] = true
		if e := p.Lookup(m.Name); e == nil || e.Type != Regular || e.Member != m {
			t.Errorf("member %s is not an entry of its own", m.Name)
		}
	}
	extracted := ""
	if p.Source == SourceOVA {
		extracted = t.TempDir()
		if out, err := exec.Command("tar", "-xf", path, "-C", extracted).CombinedOutput(); err != nil {
			t.Logf("tar -x: %v %s (members are compared one by one)", err, out)
		}
	}
	oracleOf := func(name string) string {
		if p.Source == SourceOVA {
			return filepath.Join(extracted, filepath.FromSlash(name))
		}
		return filepath.Join(filepath.Dir(path), filepath.FromSlash(name))
	}
	for _, e := range p.Entries {
		if e.Type != Regular {
			continue
		}
		for _, m := range e.Members {
			if !files[m.Name] {
				t.Errorf("%s reads %s, which is not a file of the package", e.Path, m.Name)
			}
		}
		if e.Role == RoleView {
			k := diskOfView(p, e.Path)
			oracle := filepath.Join(t.TempDir(), "oracle.raw")
			out, qerr := exec.Command("qemu-img", "convert", "-O", "raw", oracleOf(k.Name), oracle).CombinedOutput()
			if qerr != nil {
				t.Errorf("%s has a view, but qemu-img cannot convert it: %s", e.Path, out)
				continue
			}
			compareWindows(t, e, oracle)
			continue
		}
		got, err := readEntry(t, p, e.Path)
		switch e.Role {
		case RoleLogical:
			if err != nil || int64(len(got)) != e.Content.Size() {
				t.Errorf("%s: %d bytes, %v", e.Path, len(got), err)
			}
		default:
			want, rerr := os.ReadFile(oracleOf(e.Path))
			if rerr != nil {
				t.Errorf("%s: no oracle: %v", e.Path, rerr)
				continue
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, %v; the file holds %d", e.Path, len(got), err, len(want))
			}
		}
	}
}

// compareWindows compares a view with qemu-img's raw file: whole when it
// is small, else its first and last 4 MiB and 64 random 64 KiB windows (an
// 8 GiB view read whole would take minutes under the race detector).
func compareWindows(t *testing.T, e *Entry, oracle string) {
	t.Helper()
	f, err := os.Open(oracle)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	size := e.Content.Size()
	if st.Size() != size {
		t.Errorf("%s is %d bytes, qemu-img convert writes %d", e.Path, size, st.Size())
		return
	}
	type window struct{ off, n int64 }
	var ws []window
	if size <= 16<<20 {
		ws = append(ws, window{0, size})
	} else {
		ws = append(ws, window{0, 4 << 20}, window{size - 4<<20, 4 << 20})
		rng := rand.New(rand.NewSource(size))
		for range 64 {
			ws = append(ws, window{rng.Int63n(size - 64<<10), 64 << 10})
		}
	}
	for _, w := range ws {
		got := make([]byte, w.n)
		r, err := e.Content.Read(context.Background(), got, w.off, false)
		if err != nil {
			t.Errorf("%s: read %d at %d: %v", e.Path, w.n, w.off, err)
			return
		}
		r.CopyTo(got)
		want := make([]byte, w.n)
		f.ReadAt(want, w.off)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: bytes %d-%d differ from qemu-img convert's", e.Path, w.off, w.off+w.n)
			return
		}
	}
}

func diskOfView(p *Package, view string) *Disk {
	for _, k := range p.Disks {
		if k.View == view {
			return k
		}
	}
	return nil
}
