package main

import (
	"fmt"
	"path/filepath"
)

// benchFormats measures the raw views of the other formats made from the
// same 4 GiB disk: a zlib QCOW2 against qemu-img convert, and the
// uncompressed formats against the ceiling FUSE allows: the same raw disk
// stored as a member, read through the mount. The ceiling must read as
// many bytes as the views: on this kind of VM every byte read through FUSE
// lands in page-cache memory the host hands back on first touch, so the
// first 1.4 GB of a read ran at 1.8-2.7 GB/s and a whole 4 GiB at 0.9-1.5.
func benchFormats(r *report) error {
	heading("QCOW2, VHD and VHDX of the same 4 GiB disk")
	raw, err := benchRaw()
	if err != nil {
		return err
	}
	rawOVA, err := benchOVA("raw-4G.ova", raw, "disk1.img")
	if err != nil {
		return err
	}
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
		var v, c viewStats
		view := viewRead(archive, filepath.Join("disks", f.member+".raw"), &v)
		if f.compressed {
			size, err := virtualSize(img, f.format)
			if err != nil {
				return err
			}
			var d viewStats
			direct := viewRead(archive, filepath.Join("disks", f.member+".raw"), &d, "--direct-io")
			secs, err := inTurns(turns, []string{archive, img}, view, qemuFile(img, f.format), qemuNull(img, f.format, size), direct)
			if err != nil {
				return err
			}
			mine := float64(v.size) / secs[0]
			r.add("formats", "ovfmount: sequential read of the "+f.name+" raw view", mbps(v.size, secs[0]), "")
			r.add("formats", "qemu-img convert -O raw to a file", mbps(size, secs[1]), ratio(mine, float64(size)/secs[1], "ovfmount/qemu-img"))
			r.add("formats", "qemu-img convert -O raw to qemu's null driver", mbps(size, secs[2]), ratio(mine, float64(size)/secs[2], "ovfmount/qemu-img"))
			r.add("formats", "ovfmount -o direct_io: the same read", mbps(d.size, secs[3]),
				ratio(float64(d.size)/secs[3], float64(size)/secs[1], "ovfmount/qemu-img file"))
			continue
		}
		secs, err := inTurns(turns, []string{archive, rawOVA}, view, viewRead(rawOVA, "disk1.img", &c))
		if err != nil {
			return err
		}
		mine, ceiling := float64(v.size)/secs[0], float64(c.size)/secs[1]
		r.add("formats", "ovfmount: sequential read of the "+f.name+" raw view", mbps(v.size, secs[0]), "")
		r.add("formats", "  the same disk stored raw, read in turns (ceiling)", mbps(c.size, secs[1]),
			fmt.Sprintf("%.0f%% of the ceiling", 100*mine/ceiling))
	}
	fmt.Println()
	return nil
}
