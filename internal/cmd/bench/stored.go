package main

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

const storedSize = 1_500_000_000

// benchStored measures the foundation: how long until a mount of a 1.5 GB
// archive is ready, and the first sequential read of its stored member
// through the mount, beside dd of the same byte range of the archive (the
// ceiling without FUSE) and archivemount (which re-reads from the start of
// the member on every read, so it is given a few seconds only).
func benchStored(r *report) error {
	heading("stored member (1.5 GB)")
	archive, err := cached("stored-1500M.ova", func(path string) error {
		data := path + ".disk"
		defer os.Remove(data)
		if err := randomFile(data, storedSize); err != nil {
			return err
		}
		return tarFiles(path, map[string]string{"disk1.vmdk": data})
	})
	if err != nil {
		return err
	}
	off, size, err := memberRange(archive, "disk1.vmdk")
	if err != nil {
		return err
	}
	if err := warm(archive); err != nil {
		return err
	}

	var ready []float64
	for range 10 {
		mnt, secs, err := mountOvfmount(archive)
		if err != nil {
			return err
		}
		ready = append(ready, secs)
		unmount(mnt)
	}
	r.add("stored", "ovfmount: command returns, mount ready (median of 10)", fmt.Sprintf("%.1f ms", median(ready)*1000), "")

	var st viewStats
	dd := func() (float64, error) {
		return timeCmd("dd", "if="+archive, "of=/dev/null", "bs=1M", "iflag=skip_bytes,count_bytes",
			fmt.Sprintf("skip=%d", off), fmt.Sprintf("count=%d", size), "status=none")
	}
	secs, err := inTurns(turns, []string{archive}, viewRead(archive, "disk1.vmdk", &st), dd)
	if err != nil {
		return err
	}
	if st.size != size {
		return fmt.Errorf("read %d bytes through the mount, want %d", st.size, size)
	}
	ovfSecs, ddSecs := secs[0], secs[1]

	r.add("stored", "ovfmount: first sequential read through the mount (1 MiB reads)", mbps(size, ovfSecs), "")
	r.add("stored", "dd of the same byte range of the archive (no FUSE)", mbps(size, ddSecs), ratio(ddSecs, ovfSecs, "ovfmount/dd"))

	amSecs, amBytes, amMount, err := archivemountRead(archive, "disk1.vmdk", 5*time.Second)
	if err != nil {
		r.add("stored", "archivemount", "n/a", err.Error())
		return nil
	}
	r.add("stored", "archivemount: mount ready", fmt.Sprintf("%.1f ms", amMount*1000), ratio(amMount, median(ready), "archivemount/ovfmount"))
	r.add("stored", fmt.Sprintf("archivemount: sequential read, first %d MB in %.0f s", amBytes/1e6, amSecs), mbps(amBytes, amSecs),
		ratio(float64(size)/ovfSecs, float64(amBytes)/amSecs, "ovfmount/archivemount"))
	fmt.Println()
	return nil
}

func archivemountRead(archive, member string, limit time.Duration) (secs float64, n int64, mountSecs float64, err error) {
	if _, err := exec.LookPath("archivemount"); err != nil {
		return 0, 0, 0, fmt.Errorf("archivemount not installed")
	}
	mnt, err := os.MkdirTemp(*work, "am-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer unmount(mnt)
	if mountSecs, err = timeCmd("archivemount", "-o", "readonly", archive, mnt); err != nil {
		return 0, 0, 0, err
	}
	n, secs, err = readSeq(filepath.Join(mnt, member), limit)
	return secs, n, mountSecs, err
}

// tarFiles writes a tar of host files under the given member names.
func tarFiles(path string, members map[string]string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	for name, src := range members {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		st, _ := f.Stat()
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, f); err != nil {
			return err
		}
		f.Close()
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return out.Close()
}
