package ova

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const dirDescriptor = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:id="f1" ovf:href="./disk1.vmdk" ovf:size="5"/>
    <File ovf:id="f2" ovf:href="big.iso" ovf:chunkSize="4"/>
    <File ovf:id="f3" ovf:href="../outside.txt"/>
    <File ovf:id="f4" ovf:href="/etc/passwd"/>
    <File ovf:id="f5" ovf:href="http://example.com/disk.vmdk"/>
    <File ovf:id="f6" ovf:href="escape.vmdk"/>
    <File ovf:id="f7" ovf:href="inner.vmdk"/>
    <File ovf:id="f8" ovf:href="sub/disk2.vmdk"/>
    <File ovf:id="f9" ovf:href="missing.vmdk"/>
  </References>
  <DiskSection/>
</Envelope>`

func TestOpenPackageDir(t *testing.T) {
	top := t.TempDir()
	os.WriteFile(filepath.Join(top, "outside.txt"), []byte("secret"), 0o644)
	dir := filepath.Join(top, "pkg")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	files := map[string]string{
		"app.ovf": dirDescriptor, "app.mf": "SHA256(app.ovf)= 00\n", "app.cert": "cert", "disk1.mf": "SHA1(disk1.vmdk)= 00\n",
		"disk1.vmdk": "disk1", "big.iso.000000000": "0123", "big.iso.000000001": "45",
		"sub/disk2.vmdk": "disk2", "notes.txt": "not part of the package",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("../outside.txt", filepath.Join(dir, "escape.vmdk"))
	os.Symlink("disk1.vmdk", filepath.Join(dir, "inner.vmdk"))

	a, err := OpenPackageDir(filepath.Join(dir, "app.ovf"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	checkMembers(t, a, []want{
		{name: "app.ovf", data: dirDescriptor}, {name: "app.mf", data: files["app.mf"]}, {name: "app.cert", data: "cert"},
		{name: "disk1.mf", data: files["disk1.mf"]}, {name: "disk1.vmdk", data: "disk1"},
		{name: "big.iso.000000000", data: "0123"}, {name: "big.iso.000000001", data: "45"},
		{name: "sub/disk2.vmdk", data: "disk2"}, {name: "inner.vmdk", data: "disk1"},
		{name: "notes.txt", missing: true}, {name: "outside.txt", missing: true}, {name: "escape.vmdk", missing: true},
		{name: "etc/passwd", missing: true}, {name: "missing.vmdk", missing: true},
	})
	var all []string
	for _, w := range a.Warnings() {
		all = append(all, w.String())
	}
	joined := strings.Join(all, "\n")
	for _, w := range []string{`"../outside.txt" is refused`, `"/etc/passwd" is an absolute path`, "is a URL",
		`"escape.vmdk": not served`, `"missing.vmdk": the descriptor references this file, but it is not in the package`} {
		if !strings.Contains(joined, w) {
			t.Errorf("no warning contains %q; warnings:\n%s", w, joined)
		}
	}
	m, _ := a.Lookup("disk1.vmdk")
	if src, phys, ok := m.Contiguous(); !ok || phys != 0 || src == nil {
		t.Error("a package file must be served straight from its own file")
	}
	if _, err := io.ReadAll(m.Open()); err != nil {
		t.Error(err)
	}
}

func TestOpenPackageDirBadDescriptor(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.ovf"), []byte("<Envelope><References><File"), 0o644)
	a, err := OpenPackageDir(filepath.Join(dir, "x.ovf"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, ok := a.Lookup("x.ovf"); !ok || len(a.Warnings()) == 0 {
		t.Errorf("a malformed descriptor is still served, with a warning; got %v", a.Warnings())
	}
	if _, err := OpenPackageDir(filepath.Join(dir, "absent.ovf")); err == nil {
		t.Error("a missing descriptor must fail")
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
