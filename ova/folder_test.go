package ova

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestFolder checks that a folder hands out the files asked for, and
// nothing outside itself: not through "..", not through a symlink.
func TestFolder(t *testing.T) {
	top := t.TempDir()
	os.WriteFile(filepath.Join(top, "outside.txt"), []byte("secret"), 0o644)
	dir := filepath.Join(top, "pkg")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	for name, data := range map[string]string{"app.ovf": "<Envelope/>", "disk1.vmdk": "disk1", "sub/disk2.vmdk": "disk2", "notes.txt": "x"} {
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	os.Symlink("../outside.txt", filepath.Join(dir, "escape.vmdk"))
	os.Symlink("disk1.vmdk", filepath.Join(dir, "inner.vmdk"))

	f, err := OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app.ovf", "disk1.vmdk", "./sub/disk2.vmdk", "inner.vmdk"} {
		if _, err := f.Add(name); err != nil {
			t.Errorf("Add(%q): %v", name, err)
		}
	}
	if m1, _ := f.Add("disk1.vmdk"); m1 == nil || m1.Name != "disk1.vmdk" {
		t.Error("adding a file again must give the same member")
	}
	for _, name := range []string{"escape.vmdk", "../outside.txt", "/etc/passwd", "sub", "missing.vmdk"} {
		if _, err := f.Add(name); err == nil {
			t.Errorf("Add(%q) succeeded", name)
		}
	}
	if _, err := f.Add("missing.vmdk"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an absent file: %v, want fs.ErrNotExist", err)
	}
	names, _ := f.NamesWithSuffix(".OVF")
	if len(names) != 1 || names[0] != "app.ovf" {
		t.Errorf("NamesWithSuffix: %v", names)
	}
	a := f.Archive()
	defer a.Close()
	checkMembers(t, a, []want{
		{name: "app.ovf", data: "<Envelope/>"}, {name: "disk1.vmdk", data: "disk1"}, {name: "sub/disk2.vmdk", data: "disk2"},
		{name: "inner.vmdk", data: "disk1"}, {name: "notes.txt", missing: true}, {name: "outside.txt", missing: true},
		{name: "escape.vmdk", missing: true},
	})
	m, _ := a.Lookup("disk1.vmdk")
	if src, phys, ok := m.Contiguous(); !ok || phys != 0 || src == nil {
		t.Error("a package file must be served straight from its own file")
	}
	if _, err := io.ReadAll(m.Open()); err != nil {
		t.Error(err)
	}
	if _, err := f.Add("notes.txt"); err == nil {
		t.Error("Add after Archive succeeded")
	}
}

func TestLocalHref(t *testing.T) {
	for in, want := range map[string]string{
		"disk.vmdk": "disk.vmdk", "./disk.vmdk": "disk.vmdk", "sub/./d.vmdk": "sub/d.vmdk",
		"../x": "", "/abs": "", "http://h/x": "", "file:///etc/passwd": "", "": "", "a/../b": "",
	} {
		got, err := LocalHref(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("LocalHref(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
