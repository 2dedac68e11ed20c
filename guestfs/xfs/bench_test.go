package xfs

import (
	"io"
	"os"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs"
)

// BenchmarkWalkRead opens an image holding a few thousand real files
// (copied from /usr/share through a kernel mount) and, per iteration,
// walks it as a FUSE client would (ReadDir, Lookup and Stat of every name)
// and reads every regular file; it reports ns per file and MB/s.
func BenchmarkWalkRead(b *testing.B) {
	img := mkfs(b, 256)
	mnt, umount := mountRW(b, img)
	sh(b, mnt, `
for d in /usr/share/zoneinfo /usr/share/perl5 /usr/share/alsa /usr/share/mime; do
  if [ -d "$d" ]; then cp -a "$d" .; fi
done`)
	umount()
	fh, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	buf := make([]byte, 128<<10)
	var files, bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fresh FS each time: its caches start cold, as after a mount.
		fsys, err := Open(fh, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		files, bytes = 0, 0
		var walk func(dir uint64)
		walk = func(dir uint64) {
			var ents []guestfs.DirEntry
			if err := fsys.ReadDir(dir, func(e guestfs.DirEntry) error { ents = append(ents, e); return nil }); err != nil {
				b.Fatal(err)
			}
			for _, e := range ents {
				if _, err := fsys.Lookup(dir, e.Name); err != nil {
					b.Fatal(err)
				}
				a, err := fsys.Stat(e.Ino)
				if err != nil {
					b.Fatal(err)
				}
				files++
				switch a.Mode & guestfs.TypeMask {
				case guestfs.TypeDir:
					walk(e.Ino)
				case guestfs.TypeRegular:
					f, err := fsys.Open(e.Ino)
					if err != nil {
						b.Fatal(err)
					}
					for off := int64(0); ; {
						n, err := f.ReadAt(buf, off)
						off += int64(n)
						bytes += int64(n)
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		}
		walk(fsys.Root())
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*files), "ns/file")
	b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(files), "files")
}
