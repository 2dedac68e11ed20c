package ext4

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

var (
	benchOnce sync.Once
	benchDir  string
	benchImg  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchImage is an ext4 image of about 24,000 real files (the manual
// pages), made once per test process: mkfs, then the kernel copies the
// files in (mkfs -d inserts into large directories in quadratic time).
func benchImage(b *testing.B) string {
	benchOnce.Do(func() {
		testutil.RequireTool(b, "mkfs.ext4")
		d, err := os.MkdirTemp("/dev/shm", "ext4bench-")
		if err != nil {
			d, err = os.MkdirTemp("", "ext4bench-")
		}
		if err != nil {
			b.Fatal(err)
		}
		benchDir = d
		img := mkfs(b, d, "", 400, "-b", "4096")
		kernelFill(b, img, func(mnt string) { run(b, "cp", "-a", "/usr/share/man", mnt) })
		benchImg = img
	})
	if benchImg == "" {
		b.Fatal("no bench image")
	}
	return benchImg
}

// benchWalk reads every directory and stats every file of fsys and, with
// read, reads every regular file in 128 KiB requests as FUSE does. It
// returns the files seen and the bytes read.
func benchWalk(b *testing.B, fsys guestfs.FS, read bool) (files, bytes int64) {
	buf := make([]byte, 128<<10)
	var walk func(ino uint64)
	walk = func(ino uint64) {
		var ents []guestfs.DirEntry
		if err := fsys.ReadDir(ino, func(e guestfs.DirEntry) error { ents = append(ents, e); return nil }); err != nil {
			b.Fatal(err)
		}
		for _, e := range ents {
			a, err := fsys.Stat(e.Ino)
			if err != nil {
				b.Fatal(err)
			}
			files++
			switch a.Mode & guestfs.TypeMask {
			case guestfs.TypeDir:
				walk(e.Ino)
			case guestfs.TypeRegular:
				if !read {
					continue
				}
				f, err := fsys.Open(e.Ino)
				if err != nil {
					b.Fatal(err)
				}
				for off := int64(0); off < f.Size(); off += int64(len(buf)) {
					n, err := f.ReadAt(buf, off)
					if err != nil && err != io.EOF {
						b.Fatal(err)
					}
					bytes += int64(n)
				}
			}
		}
	}
	walk(fsys.Root())
	return files, bytes
}

func benchOurs(b *testing.B, read bool) {
	img := benchImage(b)
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b.ResetTimer()
	var files, n int64
	for i := 0; i < b.N; i++ {
		fsys, err := Open(f, st.Size()) // cold caches each time
		if err != nil {
			b.Fatal(err)
		}
		files, n = benchWalk(b, fsys, read)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(files), "ns/file")
	if read {
		b.SetBytes(n)
	}
}

// BenchmarkWalk lists and stats every file (as find does).
func BenchmarkWalk(b *testing.B) { benchOurs(b, false) }

// BenchmarkWalkRead also reads every file (as tar does).
func BenchmarkWalkRead(b *testing.B) { benchOurs(b, true) }

// benchKernel runs a shell command on the kernel's read-only mount of
// the same image, with the page cache dropped before each run.
func benchKernel(b *testing.B, script string) {
	img := benchImage(b)
	mnt := testutil.KernelMount(b, img, "ext4", "noload")
	files := int64(0)
	filepath.Walk(mnt, func(string, os.FileInfo, error) error { files++; return nil })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
			b.Skipf("cannot drop caches: %v", err)
		}
		b.StartTimer()
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = mnt
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", script, err, out)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(files-1), "ns/file")
}

func BenchmarkKernelFind(b *testing.B) { benchKernel(b, "find . -printf '%s %p\\n' >/dev/null") }

// BenchmarkKernelTar pipes the archive through cat: GNU tar reads no file
// when its archive is /dev/null itself.
func BenchmarkKernelTar(b *testing.B) { benchKernel(b, "tar -cf - . | cat >/dev/null") }
