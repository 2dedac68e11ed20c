package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"
)

func writeTar(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := tar.NewWriter(f)
	w.WriteHeader(&tar.Header{Name: "a.ovf", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	w.Write([]byte("<>"))
	w.Close()
	f.Close()
}

func TestExpandSources(t *testing.T) {
	dir := t.TempDir()
	writeTar(t, filepath.Join(dir, "one.ova"))
	writeTar(t, filepath.Join(dir, "two.bin")) // an archive by its bytes, whatever its name
	os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte("abc  one.ova\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "three.ova.gz"), []byte("\x1f\x8b\x08\x00"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	unpacked := t.TempDir()
	os.WriteFile(filepath.Join(unpacked, "app.ovf"), []byte("<Envelope/>"), 0o644)

	srcs, lib, err := expandSources([]string{dir}, &verify{})
	if err != nil || !lib {
		t.Fatalf("a folder of archives: library %v, %v", lib, err)
	}
	var bases []string
	for _, s := range srcs {
		bases = append(bases, s.base)
	}
	if len(bases) != 3 || bases[0] != "one.ova" || bases[1] != "three.ova.gz" || bases[2] != "two.bin" {
		t.Errorf("archives of the folder: %v", bases)
	}
	// One archive, or an unpacked package's folder, is no library.
	for _, arg := range []string{filepath.Join(dir, "one.ova"), unpacked} {
		if srcs, lib, err := expandSources([]string{arg}, &verify{}); err != nil || lib || len(srcs) != 1 {
			t.Errorf("%s: %d sources, library %v, %v", arg, len(srcs), lib, err)
		}
	}
	// Named twice: one folder.
	srcs, lib, _ = expandSources([]string{dir, filepath.Join(dir, "one.ova")}, &verify{})
	if ls := librarySources(srcs, &verify{}, openWith{}, nil); !lib || len(ls) != 3 {
		t.Errorf("an archive named twice: %d library sources", len(ls))
	}
	// A folder with neither is refused, naming both.
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("hi"), 0o644)
	if _, _, err := expandSources([]string{empty}, &verify{}); err == nil || codeOf(err) != exitUsage {
		t.Errorf("a folder of no archive: %v", err)
	}
}
