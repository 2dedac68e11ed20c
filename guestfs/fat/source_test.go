package fat

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mtoolsEnv makes mtools, sleuthkit and the reader agree on what a FAT
// time means (the writer's local time: UTC here) and lets mtools write
// and read UTF-8 long names.
var mtoolsEnv = append(os.Environ(), "TZ=UTC", "LC_ALL=C.UTF-8", "MTOOLS_SKIP_CHECK=1")

func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = mtoolsEnv
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// fatSafe says whether a host name can be copied to FAT unchanged.
func fatSafe(name string) bool {
	if name == "" || strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") || strings.HasPrefix(name, " ") || len(name) > 200 {
		return false
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) {
			return false
		}
	}
	return true
}

// buildSource writes a tree of real files from /usr/share (up to nfiles
// files and about budget bytes, names FAT can hold, no two differing only
// in case), plus the names the format makes hard: long ones, non-ASCII
// ones, lowercase and mixed-case 8.3 names, empty files, and a directory
// twelve levels deep.
func buildSource(t testing.TB, dst string, nfiles int, budget int64) {
	t.Helper()
	count, total := 0, int64(0)
	lower := map[string]bool{}
	stop := fmt.Errorf("enough")
	err := filepath.WalkDir("/usr/share", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel("/usr/share", p)
		if rel == "." {
			return nil
		}
		if !fatSafe(d.Name()) || lower[strings.ToLower(rel)] || strings.Count(rel, "/") > 6 {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		if d.IsDir() {
			lower[strings.ToLower(rel)] = true
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Size() > 128<<10 {
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
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
		lower[strings.ToLower(rel)] = true
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
	for i := 0; i < 12; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("level %02d", i))
	}
	files := map[string]string{
		"readme.txt":                  "lowercase 8.3 name\n",
		"Mixed.Txt":                   "mixed case 8.3 name\n",
		"UPPER.TXT":                   "upper case 8.3 name\n",
		"lower.TXT":                   "lowercase base, uppercase extension\n",
		"BASE.txt":                    "uppercase base, lowercase extension\n",
		"empty":                       "",
		"empty file with a long name": "",
		"a very long file name with spaces and more than thirteen characters, to need several slots.text": "long\n",
		"Ünïcødé файл 日本語.txt":            "non-ASCII\n",
		"emoji 😀 outside the BMP":         "surrogate pair\n",
		"multi.dot.name.tar.gz":           "dots\n",
		"Ωμέγα":                           "Greek for case folding\n",
		filepath.Join(deep, "bottom.txt"): "twelve levels down\n",
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
	// Distinct modification times, two seconds apart (FAT's resolution).
	i := 0
	base := time.Date(2011, 3, 4, 5, 6, 8, 0, time.UTC)
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			tm := base.Add(time.Duration(i) * 7246 * time.Second)
			os.Chtimes(p, tm, tm)
			i++
		}
		return nil
	})
}
