package main

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

const gzipContent = 1 << 30

// benchGzip measures a gzip-compressed file (ovf:compression="gzip") of
// 1 GiB of the real disk: building its seek index at the first mount,
// sequential reads of the decompressed file against zcat, and random 4 KiB
// reads once the index exists.
func benchGzip(r *report) error {
	heading(`gzip-compressed file (ovf:compression="gzip"): 1 GiB of the real disk`)
	raw, err := benchRaw()
	if err != nil {
		return err
	}
	gz, err := cached("disk-1G.img.gz", func(path string) error {
		_, err := timeCmd("sh", "-c", fmt.Sprintf("head -c %d '%s' | gzip -6 > '%s'", gzipContent, raw, path))
		return err
	})
	if err != nil {
		return err
	}
	archive, err := cached("gzip-1G.ova", func(path string) error { return gzipOVA(path, gz) })
	if err != nil {
		return err
	}
	if err := warm(archive, gz); err != nil {
		return err
	}
	z, err := medianOf3(func() (float64, error) {
		return timeCmd("sh", "-c", fmt.Sprintf("zcat < '%s' > /dev/null", gz))
	})
	if err != nil {
		return err
	}

	cache, err := os.MkdirTemp(*work, "cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	mnt, build, err := mountOvfmount(archive, "--verify=off", "--cache-dir", cache)
	if err != nil {
		return err
	}
	unmount(mnt)
	var seq []float64
	var size int64
	for range 3 {
		mnt, _, err := mountOvfmount(archive, "--verify=off", "--cache-dir", cache)
		if err != nil {
			return err
		}
		n, secs, err := readSeq(filepath.Join(mnt, "disk1.img"), 0)
		unmount(mnt)
		if err != nil {
			return err
		}
		seq, size = append(seq, secs), n
	}
	if size != gzipContent {
		return fmt.Errorf("read %d decompressed bytes, want %d", size, gzipContent)
	}
	mnt, again, err := mountOvfmount(archive, "--verify=off", "--cache-dir", cache)
	if err != nil {
		return err
	}
	rate, err := randomReadsN(filepath.Join(mnt, "disk1.img"), 1, 10*time.Second)
	unmount(mnt)
	if err != nil {
		return err
	}
	s := median(seq)
	r.add("gzip", "zcat of the stored file", mbps(size, z), "")
	r.add("gzip", "ovfmount: first mount, building the seek index", fmt.Sprintf("%.2f s", build), ratio(z, build, "of zcat's time"))
	r.add("gzip", "ovfmount: mount with the saved index", fmt.Sprintf("%.3f s", again), "")
	r.add("gzip", "ovfmount: sequential read of the decompressed file", mbps(size, s), ratio(z, s, "ovfmount/zcat"))
	r.add("gzip", "ovfmount: random 4 KiB reads, one reader", fmt.Sprintf("%.0f /s", rate), "")
	fmt.Println()
	return nil
}

// gzipOVA packs the compressed file as disk1.img.gz with a descriptor that
// says ovf:compression="gzip" and names it as a disk.
func gzipOVA(path, gz string) error {
	desc := []byte(`<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:id="f1" ovf:href="disk1.img.gz" ovf:compression="gzip"/></References>
  <DiskSection><Info>disks</Info><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="1073741824"/></DiskSection>
</Envelope>
`)
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	tw.WriteHeader(&tar.Header{Name: "app.ovf", Mode: 0o644, Size: int64(len(desc))})
	tw.Write(desc)
	f, err := os.Open(gz)
	if err != nil {
		return err
	}
	defer f.Close()
	st, _ := f.Stat()
	if err := tw.WriteHeader(&tar.Header{Name: "disk1.img.gz", Mode: 0o644, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return out.Close()
}
