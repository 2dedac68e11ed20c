package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/ovfmount/ovfmount/internal/sample"
)

// readyTurns is how many times each tool mounts each archive, in turns.
const readyTurns = 10

// benchReady measures how long the mount command takes to return with the
// mount ready, ovfmount and archivemount in turns, for an appliance of four
// members (0.7 GB: a descriptor, a manifest and two streamOptimized disks)
// and one of ten disks. What the first lookup needs is all that should be
// done before the command returns.
func benchReady(r *report) error {
	heading("mount readiness: the command returns with the mount ready")
	big, err := cached("ready-stream-700M.vmdk", func(path string) error {
		raw := path + ".raw"
		defer os.Remove(raw)
		if err := randomFile(raw, 700_000_000); err != nil {
			return err
		}
		_, err := timeCmd("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, path)
		return err
	})
	if err != nil {
		return err
	}
	small, err := cached("ready-stream-64M.vmdk", func(path string) error {
		_, err := timeCmd("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", path, "64M")
		return err
	})
	if err != nil {
		return err
	}
	four, err := cached("ready-4-members.ova", func(path string) error {
		return sample.WriteOVA(path, sample.Appliance{Name: "app", Disks: []sample.Disk{
			{File: "disk1.vmdk", Path: big, Capacity: 700_000_256, Format: sample.StreamOptimized},
			{File: "disk2.vmdk", Path: small, Capacity: 64 << 20, Format: sample.StreamOptimized}}})
	})
	if err != nil {
		return err
	}
	ten, err := cached("ready-10-disks.ova", func(path string) error {
		a := sample.Appliance{Name: "app"}
		for i := 1; i <= 10; i++ {
			a.Disks = append(a.Disks, sample.Disk{File: fmt.Sprintf("disk%d.vmdk", i), Path: small, Capacity: 64 << 20, Format: sample.StreamOptimized})
		}
		return sample.WriteOVA(path, a)
	})
	if err != nil {
		return err
	}
	for _, c := range []struct{ name, archive string }{{"4 members, 0.7 GB", four}, {"10 disks", ten}} {
		if err := warm(c.archive); err != nil {
			return err
		}
		var ovf, am []float64
		for range readyTurns {
			mnt, secs, err := mountOvfmount(c.archive)
			if err != nil {
				return err
			}
			unmount(mnt)
			ovf = append(ovf, secs)
			secs, err = archivemountReady(c.archive)
			if err != nil {
				r.add("ready", "archivemount: "+c.name, "n/a", err.Error())
				am = nil
				break
			}
			am = append(am, secs)
		}
		r.add("ready", "ovfmount: "+c.name, msRange(ovf), "")
		if am != nil {
			r.add("ready", "archivemount: "+c.name, msRange(am), ratio(median(am), median(ovf), "archivemount/ovfmount"))
		}
	}
	fmt.Println()
	return nil
}

// archivemountReady times archivemount's mount command and unmounts.
func archivemountReady(archive string) (float64, error) {
	mnt, err := os.MkdirTemp(*work, "am-")
	if err != nil {
		return 0, err
	}
	defer unmount(mnt)
	return timeCmd("archivemount", "-o", "readonly", archive, filepath.Clean(mnt))
}

// msRange is a median with the range it came from, in milliseconds.
func msRange(xs []float64) string {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return fmt.Sprintf("%.1f ms (%.1f-%.1f)", median(s)*1000, s[0]*1000, s[len(s)-1]*1000)
}
