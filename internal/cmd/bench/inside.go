package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ovfmount/ovfmount/internal/mountinfo"
	"github.com/ovfmount/ovfmount/internal/sample"
)

// kernelReadAheadKiB is the read-ahead of the raw view under the kernel's
// ext4 (see withKernel).
const kernelReadAheadKiB = 16384

// insideFiles is how many real files the guest filesystem of the inside
// section holds.
const insideFiles = 50_000

// benchInside measures the guest filesystem under files/ against the
// kernel's own ext4, mounted read-only over a loop device on the same raw
// view (so both read the same decoded disk): a cold walk of the tree
// (find -printf '%s %p'), and a cold read of every file (tar of the tree
// into a pipe; GNU tar skips reading when it writes to /dev/null itself).
// guestmount is measured too where it runs.
func benchInside(r *report) error {
	heading(fmt.Sprintf("inside the disk: ext4 with %d real files, streamOptimized VMDK in an OVA", insideFiles))
	archive, err := cached("inside-50k.ova", buildInsideOVA)
	if err != nil {
		return err
	}
	const part = "files/disk1.vmdk.p1"
	var st viewStats
	var bytes int64
	ovfWalk := func() (float64, error) {
		return withOvfmount(archive, &st, func(mnt string) (float64, error) { return walkTree(filepath.Join(mnt, part)) })
	}
	ovfRead := func() (float64, error) {
		return withOvfmount(archive, &st, func(mnt string) (float64, error) {
			secs, n, err := tarTree(filepath.Join(mnt, part))
			bytes = n
			return secs, err
		})
	}
	kernelWalk := func() (float64, error) { return withKernel(archive, walkTree) }
	kernelRead := func() (float64, error) {
		return withKernel(archive, func(dir string) (float64, error) {
			secs, _, err := tarTree(dir)
			return secs, err
		})
	}
	secs, err := inTurns(turns, []string{archive}, ovfWalk, kernelWalk, ovfRead, kernelRead)
	if err != nil {
		return err
	}
	r.add("inside", "ovfmount: cold find -printf '%s %p' of files/", fmt.Sprintf("%.2f s", secs[0]), "")
	r.add("inside", "kernel ext4 on losetup -r of the raw view: the same find", fmt.Sprintf("%.2f s", secs[1]), ratio(secs[1], secs[0], "ovfmount/kernel speed"))
	r.add("inside", "ovfmount: cold read of every file (tar | cat)", mbps(bytes, secs[2]), "")
	r.add("inside", "kernel ext4: the same read", mbps(bytes, secs[3]), ratio(secs[3], secs[2], "ovfmount/kernel throughput"))
	r.add("inside", "ovfmount: peak RSS during the walks and reads", rss(st.rss), fmt.Sprintf("cache budget %s", mib(64<<20)))
	if _, err := exec.LookPath("guestmount"); err != nil {
		r.add("inside", "guestmount", "n/a", "not installed (Debian libguestfs-tools); it boots a kernel appliance, and this machine has no /boot kernel and no /dev/kvm")
	} else if gsecs, err := inTurns(turns, []string{archive}, func() (float64, error) { return withGuestmount(archive, walkTree) }); err != nil {
		r.add("inside", "guestmount", "n/a", "does not run here: "+firstLineOf(err.Error()))
	} else {
		r.add("inside", "guestmount: the same find", fmt.Sprintf("%.2f s", gsecs[0]), ratio(gsecs[0], secs[0], "ovfmount/guestmount speed"))
	}
	fmt.Println()
	return nil
}

// buildInsideOVA makes the fixture: a partitioned disk whose ext4 holds
// insideFiles files copied from /usr with their folders, as a
// streamOptimized VMDK in an OVA with a manifest.
func buildInsideOVA(path string) error {
	dir := filepath.Dir(path)
	tree := filepath.Join(dir, "tree")
	n := 0
	for _, root := range []string{"/usr/share", "/usr/lib"} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || n >= insideFiles || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			dst := filepath.Join(tree, p)
			if os.MkdirAll(filepath.Dir(dst), 0o755) == nil && os.WriteFile(dst, b, 0o644) == nil {
				n++
			}
			return nil
		})
	}
	if n < insideFiles {
		return fmt.Errorf("only %d files under /usr to copy", n)
	}
	raw := filepath.Join(dir, "inside.raw")
	if err := sample.PartitionedDisk(raw, tree, 4<<30); err != nil {
		return err
	}
	vmdk := filepath.Join(dir, "disk1.vmdk")
	if _, err := timeCmd("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk); err != nil {
		return err
	}
	os.Remove(raw)
	os.RemoveAll(tree)
	return sample.WriteOVA(path, sample.Appliance{Name: "inside", Disks: []sample.Disk{{File: "disk1.vmdk", Path: vmdk, Capacity: 4 << 30, Format: sample.StreamOptimized}}})
}

// withOvfmount mounts archive afresh, runs f on the mount and records the
// daemon's peak RSS.
func withOvfmount(archive string, st *viewStats, f func(mnt string) (float64, error)) (float64, error) {
	mnt, _, err := mountOvfmount(archive)
	if err != nil {
		return 0, err
	}
	defer unmount(mnt)
	secs, err := f(mnt)
	st.rss = max(st.rss, peakRSS(daemonPID(mnt)))
	return secs, err
}

// withKernel mounts archive with ovfmount, puts a read-only loop device on
// the raw view at the partition's offset, mounts the kernel's ext4 on it
// (norecovery), and runs f on that.
//
// The raw view gets a 16 MiB read-ahead, not the mount's 4 MiB: the
// kernel's ext4 reads it through the loop device's page cache, and was
// faster with the larger window (alternating runs of the read of every
// file: 10.2–10.6 s with 16 MiB against 10.7–11.8 s with 4 MiB), so the
// baseline is the best the kernel did, not one slowed by a setting meant
// for ovfmount's own files.
func withKernel(archive string, f func(dir string) (float64, error)) (float64, error) {
	mnt, _, err := mountOvfmount(archive)
	if err != nil {
		return 0, err
	}
	defer unmount(mnt)
	if err := mountinfo.SetReadAhead(mnt, kernelReadAheadKiB); err != nil {
		return 0, fmt.Errorf("read-ahead of the raw view: %v", err)
	}
	out, err := exec.Command("losetup", "-r", "-f", "--show", "-o", strconv.Itoa(1<<20), filepath.Join(mnt, "disks/disk1.vmdk.raw")).Output()
	if err != nil {
		return 0, fmt.Errorf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	dir, err := os.MkdirTemp(*work, "ext4-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(dir)
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "ro,noload", loop, dir).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("mount ext4: %v %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	return f(dir)
}

// withGuestmount mounts the VMDK of archive's mount with guestmount
// (libguestfs) and runs f on the guest's partition.
func withGuestmount(archive string, f func(dir string) (float64, error)) (float64, error) {
	mnt, _, err := mountOvfmount(archive)
	if err != nil {
		return 0, err
	}
	defer unmount(mnt)
	dir, err := os.MkdirTemp(*work, "guest-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(dir)
	if out, err := exec.Command("guestmount", "--ro", "-a", filepath.Join(mnt, "disks/disk1.vmdk.raw"), "--format=raw", "-m", "/dev/sda1", dir).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("guestmount: %v %s", err, out)
	}
	defer exec.Command("guestunmount", dir).Run()
	return f(dir)
}

// walkTree times a cold find -printf '%s %p\n' of dir.
func walkTree(dir string) (float64, error) {
	dropCaches()
	return timeCmd("sh", "-c", `find "$1" -printf '%s %p\n' >/dev/null`, "sh", dir)
}

// tarTree times a cold tar of dir into a pipe, and counts the bytes.
func tarTree(dir string) (float64, int64, error) {
	dropCaches()
	var n int64
	secs, err := timeCmd("sh", "-c", `tar -C "$1" -cf - . | wc -c > "$2"`, "sh", dir, filepath.Join(*work, "tar-bytes"))
	if b, e := os.ReadFile(filepath.Join(*work, "tar-bytes")); e == nil {
		n, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	return secs, n, err
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
