package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// chainLayer builds a QCOW2 overlay of the first of chain (files in the
// fixtures folder, named relatively as qemu-img create -b writes them, the
// nearest parent first) and writes 1 MiB of fresh data every step bytes
// from first, with qemu-io.
func chainLayer(name string, chain []string, first, step int64, pattern int) (string, error) {
	parent := chain[0]
	return cached(name, func(path string) error {
		// The overlay is built in a scratch folder: give qemu-io the
		// chain there, by the names the layers record.
		for _, l := range chain {
			if err := os.Symlink(filepath.Join(*work, l), filepath.Join(filepath.Dir(path), l)); err != nil {
				return err
			}
		}
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", parent, "-F", "qcow2", path, fmt.Sprint(benchDiskSize)).CombinedOutput(); err != nil {
			return fmt.Errorf("qemu-img create: %v %s", err, out)
		}
		args := []string{"-f", "qcow2"}
		for off := first; off+1<<20 <= benchDiskSize; off += step {
			args = append(args, "-c", fmt.Sprintf("write -P %d %d 1M", pattern, off))
		}
		if out, err := exec.Command("qemu-io", append(args, path)...).CombinedOutput(); err != nil {
			return fmt.Errorf("qemu-io: %v %s", err, out)
		}
		return nil
	})
}

// benchChain measures the raw view of the leaf of a three-layer QCOW2
// chain over the bench disk (each overlay holds 1 MiB in every 32 MiB)
// against qemu-img convert -O raw of the same leaf, in turns.
func benchChain(r *report) error {
	heading("A three-layer QCOW2 chain over the 4 GiB disk: the leaf's raw view against qemu-img convert")
	base, err := benchImage("disk-4G.qcow2", "qcow2")
	if err != nil {
		return err
	}
	mid, err := chainLayer("chain-mid.qcow2", []string{filepath.Base(base)}, 0, 32<<20, 0x5a)
	if err != nil {
		return err
	}
	leaf, err := chainLayer("chain-leaf.qcow2", []string{filepath.Base(mid), filepath.Base(base)}, 16<<20, 32<<20, 0xa5)
	if err != nil {
		return err
	}
	archive, err := cached("chain.ova", func(path string) error {
		return tarFiles(path, map[string]string{filepath.Base(base): base, filepath.Base(mid): mid, filepath.Base(leaf): leaf})
	})
	if err != nil {
		return err
	}
	var v viewStats
	view := viewRead(archive, filepath.Join("disks", filepath.Base(leaf)+".raw"), &v)
	secs, err := inTurns(turns, []string{archive, base, mid, leaf}, view, qemuFile(leaf, "qcow2"))
	if err != nil {
		return err
	}
	mine := float64(v.size) / secs[0]
	r.add("chain", "ovfmount: sequential read of the leaf's raw view", mbps(v.size, secs[0]), fmt.Sprintf("peak RSS %d MiB", v.rss>>20))
	r.add("chain", "qemu-img convert -O raw of the leaf to a file", mbps(benchDiskSize, secs[1]),
		ratio(mine, float64(benchDiskSize)/secs[1], "ovfmount/qemu-img (target >= 2x)"))
	fmt.Println()
	return nil
}
