package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Writes measured on the overlay: 4 KiB random writes with a sync every
// 64, as a guest's database does, and 1 MiB sequential writes, as a guest
// copying a file does.
const (
	randomWrites   = 4096
	randomSyncs    = 64
	sequentialSize = 256 << 20
)

// benchOverlay writes the bench VMDK's raw view through ovfmount's
// --overlay, against qemu writing the same into a QCOW2 overlay of the
// same VMDK (qemu-img create -b, written with qemu-io), the way qemu runs
// an appliance's disk without converting it.
func benchOverlay(r *report) error {
	heading("writes into an overlay over the streamOptimized VMDK (4 GiB disk)")
	if _, err := exec.LookPath("qemu-io"); err != nil {
		r.add("overlay", "qemu-io", "n/a", "not installed (Debian qemu-utils)")
		fmt.Println()
		return nil
	}
	img, archive, size, err := benchVMDKOVA()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	offs := make([]int64, randomWrites)
	for i := range offs {
		offs[i] = rng.Int64N(size/4096) * 4096
	}
	secs, err := inTurns(turns, []string{archive, img},
		func() (float64, error) { return overlayWrites(archive, offs, false) },
		func() (float64, error) { return qemuWrites(img, offs, false) },
		func() (float64, error) { return overlayWrites(archive, offs, true) },
		func() (float64, error) { return qemuWrites(img, offs, true) },
	)
	if err != nil {
		return err
	}
	per := func(s float64) string { return fmt.Sprintf("%.0f writes/s", randomWrites/s) }
	r.add("overlay", "ovfmount --overlay: 4 KiB random writes, fsync every 64", per(secs[0]), "")
	r.add("overlay", "qemu-io on a QCOW2 overlay (-b the VMDK): the same", per(secs[1]), ratio(secs[1], secs[0], "ovfmount/qemu"))
	r.add("overlay", "ovfmount --overlay: 1 MiB sequential writes, then fsync", mbps(sequentialSize, secs[2]), "")
	r.add("overlay", "qemu-io on a QCOW2 overlay: the same", mbps(sequentialSize, secs[3]), ratio(secs[3], secs[2], "ovfmount/qemu"))
	fmt.Println()
	return nil
}

// overlayWrites mounts archive with a fresh overlay and times the writes
// into its raw view.
func overlayWrites(archive string, offs []int64, sequential bool) (float64, error) {
	dir, err := os.MkdirTemp(*work, "overlay-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	mnt, _, err := mountOvfmount(archive, "--overlay", dir)
	if err != nil {
		return 0, err
	}
	defer unmount(mnt)
	f, err := os.OpenFile(filepath.Join(mnt, "disks/disk1.vmdk.raw"), os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	if sequential {
		buf := pattern(1<<20, 0x5a)
		for off := int64(0); off < sequentialSize; off += 1 << 20 {
			if _, err := f.WriteAt(buf, off); err != nil {
				return 0, err
			}
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		return time.Since(start).Seconds(), nil
	}
	buf := pattern(4096, 0xa5)
	for i, off := range offs {
		if _, err := f.WriteAt(buf, off); err != nil {
			return 0, err
		}
		if (i+1)%randomSyncs == 0 {
			if err := f.Sync(); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start).Seconds(), nil
}

// qemuWrites makes a fresh QCOW2 overlay of img and times qemu-io writing
// the same into it, with a flush where the other syncs.
func qemuWrites(img string, offs []int64, sequential bool) (float64, error) {
	dir, err := os.MkdirTemp(*work, "qcow2-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ov := filepath.Join(dir, "overlay.qcow2")
	if _, err := timeCmd("qemu-img", "create", "-q", "-f", "qcow2", "-b", img, "-F", "vmdk", ov); err != nil {
		return 0, err
	}
	var args []string
	if sequential {
		for off := int64(0); off < sequentialSize; off += 1 << 20 {
			args = append(args, "-c", fmt.Sprintf("write -q -P 0x5a %d 1M", off))
		}
		args = append(args, "-c", "flush")
	} else {
		for i, off := range offs {
			args = append(args, "-c", fmt.Sprintf("write -q -P 0xa5 %d 4k", off))
			if (i+1)%randomSyncs == 0 {
				args = append(args, "-c", "flush")
			}
		}
	}
	// writeback, as qemu runs a guest by default: its flushes, where ours
	// sync, make the writes durable (qemu-io alone defaults to writethrough,
	// a sync per write).
	return timeCmd("qemu-io", append(append([]string{"-f", "qcow2", "-t", "writeback"}, args...), ov)...)
}

// pattern is what qemu-io's write -P writes: n bytes of b.
func pattern(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
