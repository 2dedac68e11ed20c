package main

import (
	"fmt"
	"path/filepath"
)

// benchFormats measures the raw views of the other formats made from the
// same 4 GiB disk: a zlib QCOW2 against qemu-img convert, and the
// uncompressed formats against a stored member read, which is what FUSE
// can carry at best.
func benchFormats(r *report) error {
	heading("QCOW2, VHD and VHDX of the same 4 GiB disk")
	stored, err := storedThroughput()
	if err != nil {
		return err
	}
	r.add("formats", "stored member read, the FUSE ceiling (this run)", fmt.Sprintf("%.0f MB/s", stored/1e6), "")
	for _, f := range []struct {
		name, img, format string
		opts              []string
		member            string
		compressed        bool
	}{
		{"qcow2 zlib", "disk-4G-zlib.qcow2", "qcow2", []string{"-c", "-o", "compression_type=zlib"}, "disk1.qcow2", true},
		{"qcow2", "disk-4G.qcow2", "qcow2", nil, "disk1.qcow2", false},
		{"vhd dynamic", "disk-4G.vhd", "vpc", nil, "disk1.vhd", false},
		{"vhdx dynamic", "disk-4G.vhdx", "vhdx", nil, "disk1.vhdx", false},
	} {
		img, err := benchImage(f.img, f.format, f.opts...)
		if err != nil {
			return err
		}
		archive, err := benchOVA(f.img+".ova", img, f.member)
		if err != nil {
			return err
		}
		if err := warm(archive, img); err != nil {
			return err
		}
		v, err := measureView(archive, filepath.Join("disks", f.member+".raw"), false)
		if err != nil {
			return err
		}
		mine := float64(v.size) / v.seqSecs
		r.add("formats", "ovfmount: sequential read of the "+f.name+" raw view", mbps(v.size, v.seqSecs), "")
		if f.compressed {
			qfSecs, err := qemuConvertFile(img, f.format)
			if err != nil {
				return err
			}
			qSecs, qSize, err := qemuConvert(img, f.format)
			if err != nil {
				return err
			}
			r.add("formats", "qemu-img convert -O raw to a file", mbps(qSize, qfSecs), ratio(mine, float64(qSize)/qfSecs, "ovfmount/qemu-img"))
			r.add("formats", "qemu-img convert -O raw to qemu's null driver", mbps(qSize, qSecs), ratio(mine, float64(qSize)/qSecs, "ovfmount/qemu-img"))
		} else {
			r.add("formats", "  as a share of the stored-member ceiling", fmt.Sprintf("%.0f%%", 100*mine/stored), "")
		}
	}
	fmt.Println()
	return nil
}

// storedThroughput reads the 1.5 GB stored member through a fresh mount
// (the median of three), for the ceiling the uncompressed formats are compared with.
func storedThroughput() (float64, error) {
	archive, err := cached("stored-1500M.ova", func(path string) error {
		return fmt.Errorf("run the stored section first to build %s", path)
	})
	if err != nil {
		return 0, err
	}
	if err := warm(archive); err != nil {
		return 0, err
	}
	var n int64
	secs, err := medianOf3(func() (float64, error) {
		mnt, _, err := mountOvfmount(archive)
		if err != nil {
			return 0, err
		}
		defer unmount(mnt)
		var secs float64
		n, secs, err = readSeq(filepath.Join(mnt, "disk1.vmdk"), 0)
		return secs, err
	})
	return float64(n) / secs, err
}
