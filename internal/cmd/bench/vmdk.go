package main

import (
	"fmt"
)

// benchVMDK measures the raw view of a streamOptimized VMDK holding a 4 GiB
// disk of real binaries, against vmdkmount (libvmdk) and qemu-img convert,
// the tools people use to read such a disk.
func benchVMDK(r *report) error {
	heading("streamOptimized VMDK, 4 GiB disk with 3 GB of real files")
	img, err := benchImage("disk-4G-stream.vmdk", "vmdk", "-o", "subformat=streamOptimized")
	if err != nil {
		return err
	}
	archive, err := benchOVA("vmdk-4G.ova", img, "disk1.vmdk")
	if err != nil {
		return err
	}
	if err := warm(archive, img); err != nil {
		return err
	}
	v, err := measureView(archive, "disks/disk1.vmdk.raw", true)
	if err != nil {
		return err
	}
	qSecs, qSize, err := qemuConvert(img, "vmdk")
	if err != nil {
		return err
	}
	qfSecs, err := qemuConvertFile(img, "vmdk")
	if err != nil {
		return err
	}
	ovf := float64(v.size) / v.seqSecs
	r.add("vmdk", "ovfmount: sequential read of disks/disk1.vmdk.raw", mbps(v.size, v.seqSecs), "")
	r.add("vmdk", "qemu-img convert -O raw to a file (what users run)", mbps(qSize, qfSecs), ratio(ovf, float64(qSize)/qfSecs, "ovfmount/qemu-img"))
	r.add("vmdk", "qemu-img convert -O raw to qemu's null driver (decoding only)", mbps(qSize, qSecs), ratio(ovf, float64(qSize)/qSecs, "ovfmount/qemu-img"))
	vmSecs, vmSize, vmRand, vmErr := vmdkmountRun(img)
	if vmErr == nil {
		r.add("vmdk", "vmdkmount: sequential read of vmdk1", mbps(vmSize, vmSecs), ratio(ovf, float64(vmSize)/vmSecs, "ovfmount/vmdkmount"))
	} else {
		r.add("vmdk", "vmdkmount", "n/a", vmErr.Error())
	}
	r.add("vmdk", "ovfmount: random 4 KiB reads, one reader", fmt.Sprintf("%.0f /s", v.randRate), "")
	if vmErr == nil {
		r.add("vmdk", "vmdkmount: random 4 KiB reads, one reader", fmt.Sprintf("%.0f /s", vmRand), ratio(v.randRate, vmRand, "ovfmount/vmdkmount"))
	}
	r.add("vmdk", "ovfmount: peak RSS during the sequential read", mib(v.rss), fmt.Sprintf("cache budget %s", mib(64<<20)))
	fmt.Println()
	return nil
}
