package iso9660

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C.UTF-8")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// buildSource writes a tree of real files from /usr/share (up to nfiles
// files, about budget bytes) and what ISO 9660 and its extensions make
// hard: long and non-ASCII names, names with several dots and with
// versions, a directory fourteen levels deep (Rock Ridge relocates those
// below level 8), symlinks (relative, absolute, dangling, with "." and
// ".." components), hard links, device nodes, FIFOs, empty files, unusual
// modes and owners, and modification times with sub-second parts.
func buildSource(t testing.TB, dst string, nfiles int, budget int64) {
	t.Helper()
	count, total := 0, int64(0)
	stop := fmt.Errorf("enough")
	err := filepath.WalkDir("/usr/share", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel("/usr/share", p)
		if rel == "." || d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() || strings.Count(rel, "/") > 6 {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Size() > 256<<10 {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		out := filepath.Join(dst, "usr", rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, b, fi.Mode().Perm()); err != nil {
			return err
		}
		count++
		total += int64(len(b))
		if count >= nfiles || total >= budget {
			return stop
		}
		return nil
	})
	if err != nil && err != stop {
		t.Fatal(err)
	}
	if count < nfiles/2 {
		t.Fatalf("only %d files found under /usr/share", count)
	}
	deep := filepath.Join(dst, "deep")
	for i := 0; i < 14; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("level%02d", i))
	}
	files := map[string]string{
		"README": "no extension\n",
		strings.Repeat("name of 255 bytes, which Rock Ridge continues over several NM entries ", 4)[:255]: "long name\n",
		"readme.txt":           "lowercase\n",
		"Mixed Case Name.Text": "mixed\n",
		"empty":                "",
		"a very long file name that is longer than sixty-four characters, which Joliet cuts.txt": "long\n",
		"Ünïcødé файл 日本語.txt":                                                                   "non-ASCII\n",
		"emoji 😀 outside the BMP":                                                                "surrogate pair\n",
		"multi.dot.name.tar.gz":                                                                  "dots\n",
		"semi;colon":                                                                             "a semicolon\n",
		"trailing.":                                                                              "a trailing dot\n",
		filepath.Join(deep, "bottom.txt"):                                                        "fourteen levels down\n",
		"dir with spaces/inner file":                                                             "inner\n",
		"hard/original":                                                                          "hard-linked content\n",
	}
	for name, content := range files {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dst, name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Link(filepath.Join(dst, "hard/original"), filepath.Join(dst, "hard/second link")))
	must(os.Link(filepath.Join(dst, "hard/original"), filepath.Join(dst, "dir with spaces/third link")))
	os.MkdirAll(filepath.Join(dst, "links"), 0o755)
	for name, target := range map[string]string{
		"relative": "../readme.txt", "absolute": "/etc/os-release", "dangling": "no/such/file",
		"dots": "./a/../b/./c", "to dir": "../dir with spaces", "root": "/",
		"long": strings.Repeat("component/", 40) + "end", "non-ASCII": "Ünïcødé файл 日本語.txt",
	} {
		must(os.Symlink(target, filepath.Join(dst, "links", name)))
	}
	if os.Geteuid() == 0 {
		os.MkdirAll(filepath.Join(dst, "dev"), 0o755)
		must(syscall.Mknod(filepath.Join(dst, "dev/null"), syscall.S_IFCHR|0o666, int(mkdev(1, 3))))
		must(syscall.Mknod(filepath.Join(dst, "dev/sda300"), syscall.S_IFBLK|0o660, int(mkdev(8, 300))))
		must(syscall.Mknod(filepath.Join(dst, "dev/big"), syscall.S_IFCHR|0o600, int(mkdev(300, 70000))))
		must(syscall.Mkfifo(filepath.Join(dst, "dev/fifo"), 0o644))
		must(os.Chown(filepath.Join(dst, "readme.txt"), 1234, 5678))
		must(os.Lchown(filepath.Join(dst, "links/relative"), 4321, 8765))
	}
	must(os.Chmod(filepath.Join(dst, "README"), 0o4751))
	must(os.Chmod(filepath.Join(dst, "dir with spaces"), 0o1777))
	// Distinct times with sub-second parts (Rock Ridge keeps seconds).
	i := 0
	base := time.Date(2013, 5, 6, 7, 8, 9, 250_000_000, time.UTC)
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			tm := base.Add(time.Duration(i) * 86413 * time.Second)
			os.Chtimes(p, tm.Add(time.Hour), tm)
			i++
		}
		return nil
	})
}
