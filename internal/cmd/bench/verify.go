package main

import (
	"fmt"
	"os"

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
	cache, err := os.MkdirTemp(*work, "cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)

	verify := func() (float64, error) {
		os.RemoveAll(cache) // every run hashes everything
		return timeCmd(*binary, "verify", "--cache-dir", cache, archive)
	}
	secs, err := inTurns(turns, []string{archive, disk}, verify,
		func() (float64, error) { return timeCmd("openssl", "dgst", "-sha256", disk) },
		func() (float64, error) { return timeCmd("sha256sum", disk) })
	if err != nil {
		return err
	}
	m := secs[0]
	r.add("verify", "ovfmount verify (manifest digest and chunk table)", mbps(storedSize, m), "")
	r.add("verify", "openssl dgst -sha256 of the disk", mbps(storedSize, secs[1]), ratio(secs[1], m, "ovfmount/openssl"))
	r.add("verify", "sha256sum of the disk", mbps(storedSize, secs[2]), ratio(secs[2], m, "ovfmount/sha256sum"))

	// Sequential reads: a verified member checked chunk by chunk, against
	// verification off (spliced), in turns.
	if _, err := timeCmd(*binary, "verify", "--cache-dir", cache, archive); err != nil {
		return err
	}
	var st viewStats
	runs := []func() (float64, error){
		viewRead(archive, "disk1.img", &st, "--cache-dir", cache),
		viewRead(archive, "disk1.img", &st, "--verify=off"),
		viewRead(archive, "disk1.img", &st, "--cache-dir", cache, "--direct-io"),
		viewRead(archive, "disk1.img", &st, "--verify=off", "--direct-io"),
	}
	if *baseline != "" {
		before, err := verifiedCache(*baseline, archive)
		if err != nil {
			return err
		}
		defer os.RemoveAll(before)
		runs = append(runs,
			as(*baseline, viewRead(archive, "disk1.img", &st, "--cache-dir", before)),
			as(*baseline, viewRead(archive, "disk1.img", &st, "--cache-dir", before, "--direct-io")))
	}
	reads, err := inTurns(turns, []string{archive}, runs...)
	if err != nil {
		return err
	}
	if st.size != storedSize {
		return fmt.Errorf("read %d bytes of disk1.img, want %d", st.size, storedSize)
	}
	checked, off := reads[0], reads[1]
	r.add("verify", "sequential read of the verified member, chunks checked", mbps(storedSize, checked), ratio(off, checked, "of --verify=off"))
	r.add("verify", "sequential read with --verify=off", mbps(storedSize, off), "")
	r.add("verify", "-o direct_io: the verified member, chunks checked", mbps(storedSize, reads[2]), ratio(reads[3], reads[2], "of --verify=off -o direct_io"))
	r.add("verify", "-o direct_io: the same read with --verify=off", mbps(storedSize, reads[3]), "")
	if *baseline != "" {
		r.add("verify", "  the verified member, chunks checked, baseline binary", mbps(storedSize, reads[4]), ratio(reads[4], checked, "this/baseline"))
		r.add("verify", "  the same with -o direct_io, baseline binary", mbps(storedSize, reads[5]), ratio(reads[5], reads[2], "this/baseline"))
	}
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
