package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ovfmount/ovfmount/internal/sample"
)

// benchVerify measures integrity checking: `ovfmount verify` of a 1.5 GB
// signed-manifest OVA against openssl dgst -sha256 and sha256sum of its
// disk, and a sequential read of the verified member with chunk checks on
// against the same read with verification off.
func benchVerify(r *report) error {
	heading("verification of a 1.5 GB OVA with a SHA256 manifest")
	archive, disk, err := manifestOVA()
	if err != nil {
		return err
	}
	if err := warm(archive, disk); err != nil {
		return err
	}
	cache, err := os.MkdirTemp(*work, "cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)

	var mine, ssl, sum []float64
	for range 3 {
		secs, err := timeCmd(*binary, "verify", "--cache-dir", cache, archive)
		if err != nil {
			return err
		}
		mine = append(mine, secs)
		os.RemoveAll(cache) // every run hashes everything
		if secs, err = timeCmd("openssl", "dgst", "-sha256", disk); err != nil {
			return err
		}
		ssl = append(ssl, secs)
	}
	if secs, err := timeCmd("sha256sum", disk); err == nil {
		sum = append(sum, secs)
	}
	m := median(mine)
	r.add("verify", "ovfmount verify (manifest digest and chunk table)", mbps(storedSize, m), "")
	r.add("verify", "openssl dgst -sha256 of the disk", mbps(storedSize, median(ssl)), ratio(median(ssl), m, "ovfmount/openssl"))
	if len(sum) > 0 {
		r.add("verify", "sha256sum of the disk", mbps(storedSize, sum[0]), ratio(sum[0], m, "ovfmount/sha256sum"))
	}

	// Sequential reads: a verified member checked chunk by chunk, against
	// verification off (spliced).
	if _, err := timeCmd(*binary, "verify", "--cache-dir", cache, archive); err != nil {
		return err
	}
	read := func(args ...string) (float64, error) {
		return medianOf3(func() (float64, error) {
			mnt, _, err := mountOvfmount(archive, args...)
			if err != nil {
				return 0, err
			}
			n, secs, err := readSeq(filepath.Join(mnt, "disk1.img"), 0)
			unmount(mnt)
			if err == nil && n != storedSize {
				err = fmt.Errorf("read %d bytes", n)
			}
			return secs, err
		})
	}
	checked, err := read("--cache-dir", cache)
	if err != nil {
		return err
	}
	off, err := read("--verify=off")
	if err != nil {
		return err
	}
	r.add("verify", "sequential read of the verified member, chunks checked", mbps(storedSize, checked), ratio(off, checked, "of --verify=off"))
	r.add("verify", "sequential read with --verify=off", mbps(storedSize, off), "")
	fmt.Println()
	return nil
}

// manifestOVA is a 1.5 GB appliance (descriptor, SHA256 manifest, one
// stored disk of random bytes), and that disk.
func manifestOVA() (archive, disk string, err error) {
	disk, err = cached("verify-disk-1500M.bin", func(path string) error { return randomFile(path, storedSize) })
	if err != nil {
		return "", "", err
	}
	archive, err = cached("verify-1500M.ova", func(path string) error {
		return sample.WriteOVA(path, sample.Appliance{Name: "app", Disks: []sample.Disk{{File: "disk1.img", Path: disk, Capacity: storedSize}}})
	})
	return archive, disk, err
}
