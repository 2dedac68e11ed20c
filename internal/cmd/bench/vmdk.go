package main

import (
	"fmt"
	"os/exec"
)

// benchVMDK measures the raw view of a streamOptimized VMDK holding a 4 GiB
// disk of real binaries, against vmdkmount (libvmdk) and qemu-img convert,
// the tools people use to read such a disk.
func benchVMDK(r *report) error {
	heading("streamOptimized VMDK, 4 GiB disk with 3 GB of real files")
	img, archive, size, err := benchVMDKOVA()
	if err != nil {
		return err
	}
	var v, d viewStats
	var vmSize int64
	runs := []func() (float64, error){
		viewRead(archive, "disks/disk1.vmdk.raw", &v),
		qemuFile(img, "vmdk"),
		qemuNull(img, "vmdk", size),
		viewRead(archive, "disks/disk1.vmdk.raw", &d, "--direct-io"),
	}
	_, vmErr := exec.LookPath("vmdkmount")
	if vmErr == nil {
		runs = append(runs, vmdkmountRead(img, &vmSize))
	}
	secs, err := inTurns(turns, []string{archive, img}, runs...)
	if err != nil {
		return err
	}
	ovf := float64(v.size) / secs[0]
	r.add("vmdk", "ovfmount: sequential read of disks/disk1.vmdk.raw", mbps(v.size, secs[0]), "")
	r.add("vmdk", "qemu-img convert -O raw to a file (what users run)", mbps(size, secs[1]), ratio(ovf, float64(size)/secs[1], "ovfmount/qemu-img"))
	r.add("vmdk", "qemu-img convert -O raw to qemu's null driver (decoding only)", mbps(size, secs[2]), ratio(ovf, float64(size)/secs[2], "ovfmount/qemu-img"))
	if vmErr == nil {
		r.add("vmdk", "vmdkmount: sequential read of vmdk1", mbps(vmSize, secs[4]), ratio(ovf, float64(vmSize)/secs[4], "ovfmount/vmdkmount"))
	} else {
		r.add("vmdk", "vmdkmount", "n/a", "vmdkmount not installed")
	}
	direct := float64(d.size) / secs[3]
	vs := ratio(direct, float64(size)/secs[1], "ovfmount/qemu-img file")
	if vmErr == nil {
		vs += ", " + ratio(direct, float64(vmSize)/secs[4], "ovfmount/vmdkmount")
	}
	r.add("vmdk", "ovfmount -o direct_io: sequential read of the raw view", mbps(d.size, secs[3]), vs)

	r.add("vmdk", "ovfmount: peak RSS during the sequential reads", rss(max(v.rss, d.rss)), fmt.Sprintf("cache budget %s", mib(64<<20)))
	fmt.Println()
	return nil
}

// benchVMDKOVA is the bench disk as a streamOptimized VMDK, the OVA holding
// it as disk1.vmdk, and its virtual size: what the vmdk, nbd and overlay
// sections read and write.
func benchVMDKOVA() (img, archive string, size int64, err error) {
	if img, err = benchImage("disk-4G-stream.vmdk", "vmdk", "-o", "subformat=streamOptimized"); err != nil {
		return "", "", 0, err
	}
	if archive, err = benchOVA("vmdk-4G.ova", img, "disk1.vmdk"); err != nil {
		return "", "", 0, err
	}
	size, err = virtualSize(img, "vmdk")
	return img, archive, size, err
}
