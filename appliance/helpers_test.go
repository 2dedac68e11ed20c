package appliance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// openAt opens the package at path with the given checks.
func openAt(t *testing.T, path string, iopts integrity.Options, opts ...func(*Options)) *Package {
	t.Helper()
	o := Options{Integrity: iopts}
	for _, f := range opts {
		f(&o)
	}
	p, err := OpenPath(path, o)
	if err != nil {
		t.Fatalf("OpenPath(%s): %v", path, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// ova writes the files as an OVA in a temporary folder.
func writeOVA(t *testing.T, files ...testpkg.File) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.ova")
	testpkg.WriteOVA(t, path, files...)
	return path
}

// paths lists the plan's paths.
func paths(p *Package) []string {
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.Path)
	}
	return out
}

// readEntry reads a regular entry whole through its content, copied.
func readEntry(t *testing.T, p *Package, path string) ([]byte, error) {
	t.Helper()
	e := p.Lookup(path)
	if e == nil || e.Type != Regular {
		t.Fatalf("%s is not a file of the plan: %v", path, paths(p))
	}
	buf := make([]byte, e.Content.Size())
	r, err := e.Content.Read(context.Background(), buf, 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]byte, r.Len())
	r.CopyTo(out)
	return out, nil
}

// status is the verification state of an entry.
func status(t *testing.T, p *Package, path string) string {
	t.Helper()
	e := p.Lookup(path)
	if e == nil {
		t.Fatalf("%s is not in the plan", path)
	}
	s, _ := e.Content.Status()
	return s
}

func has(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

func joined(ws []string) string { return strings.Join(ws, "\n") }

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}

// disk is a file of random-looking but reproducible bytes.
func disk(name string, n int, seed byte) testpkg.File {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return testpkg.File{Name: name, Data: b}
}

var _ = bytes.Equal
var _ = errors.Is
var _ = io.EOF
