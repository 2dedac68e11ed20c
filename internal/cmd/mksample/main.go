// Command mksample writes a sample appliance for `make demo` and the
// benchmarks: an OVA holding an OVF descriptor, a SHA256 manifest and a
// streamOptimized VMDK of a partitioned disk with an ext4 file system full
// of real files, and the files that name a guest OS (os-release, hostname).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ovfmount/ovfmount/internal/sample"
	"github.com/ovfmount/ovfmount/internal/vmdkwriter"
)

func main() {
	size := flag.Int64("size", 64<<20, "virtual disk size in bytes")
	content := flag.Int64("content", 16<<20, "bytes of real files copied from /usr into the disk")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mksample [-size BYTES] [-content BYTES] OUT.ova\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(flag.Arg(0), *size, *content); err != nil {
		fmt.Fprintln(os.Stderr, "mksample:", err)
		os.Exit(1)
	}
}

func build(out string, size, content int64) error {
	work, err := os.MkdirTemp(filepath.Dir(out), ".mksample-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	files := filepath.Join(work, "files")
	if err := sample.CopyRealFiles(files, content); err != nil {
		return err
	}
	if err := sample.GuestIdentity(files, "demo-appliance"); err != nil {
		return err
	}
	raw := filepath.Join(work, "disk.raw")
	if err := sample.PartitionedDisk(raw, files, size); err != nil {
		return err
	}
	vmdk := filepath.Join(work, "disk1.vmdk")
	if err := writeVMDK(vmdk, raw, size); err != nil {
		return err
	}
	name := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	return sample.WriteOVA(out, sample.Appliance{Name: name,
		Disks: []sample.Disk{{File: "disk1.vmdk", Path: vmdk, Capacity: size, Format: sample.StreamOptimized}}})
}

func writeVMDK(path, raw string, size int64) error {
	in, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := vmdkwriter.Write(out, in, size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
