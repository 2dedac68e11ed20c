package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ovfmount/ovfmount/internal/versitygw"
)

// benchS3 measures archives in an S3 store (Versity Gateway on
// loopback): mounting one archive, reading the bench VMDK's raw view
// against the same from the local file (fresh mounts in turns, no disk
// cache), and mounting a prefix of 1,000 archives.
func benchS3(r *report) error {
	heading("S3: the bench OVA and a prefix of 1,000 archives in Versity Gateway on loopback, against the local file")
	if _, err := versitygw.Binary(); err != nil {
		r.add("s3", "versitygw", "n/a", err.Error())
		return nil
	}
	_, archive, _, err := benchVMDKOVA()
	if err != nil {
		return err
	}
	lib := filepath.Join(*work, "library-1000")
	if _, err := os.Stat(filepath.Join(lib, "appliance-0999.ova")); err != nil {
		if err := writeLibrary(lib, 1000); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp(*work, "s3-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := versitygw.StartProcess(dir)
	if err != nil {
		return err
	}
	defer srv.Stop()
	ctx := context.Background()
	if err := srv.CreateBucket(ctx, "golden"); err != nil {
		return err
	}
	fmt.Println("  uploading the bench OVA and 1,000 small archives ...")
	if _, err := srv.PutFile(ctx, "golden", "vmdk-4G.ova", archive); err != nil {
		return err
	}
	des, err := os.ReadDir(lib)
	if err != nil {
		return err
	}
	for _, de := range des {
		if _, err := srv.PutFile(ctx, "golden", "lib/"+de.Name(), filepath.Join(lib, de.Name())); err != nil {
			return err
		}
	}
	// ovfmount finds the server as the AWS CLI would: from the
	// environment, with none of the host's AWS setup.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	if err := warm(archive); err != nil {
		return err
	}
	object := "s3://golden/vmdk-4G.ova"
	var mountS3, mountLocal, readS3, readLocal, mountLib []float64
	var size int64
	for range 3 {
		for _, src := range []string{object, archive} {
			mnt, secs, err := mountOvfmount(src, "--verify=off", "--cache-dir=")
			if err != nil {
				return err
			}
			n, rs, err := readSeq(filepath.Join(mnt, "disks", "disk1.vmdk.raw"), 0)
			unmount(mnt)
			if err != nil {
				return err
			}
			size = n
			if src == object {
				mountS3, readS3 = append(mountS3, secs), append(readS3, rs)
			} else {
				mountLocal, readLocal = append(mountLocal, secs), append(readLocal, rs)
			}
		}
		mnt, secs, err := mountOvfmount("s3://golden/lib/", "--cache-dir=")
		if err != nil {
			return err
		}
		unmount(mnt)
		mountLib = append(mountLib, secs)
	}
	r.add("s3", "mount of the bench OVA from s3:// (ready)", fmt.Sprintf("%.0f ms", median(mountS3)*1000),
		fmt.Sprintf("local file: %.0f ms; target < 100 ms", median(mountLocal)*1000))
	r.add("s3", "sequential read of the raw view, local file", mbps(size, median(readLocal)), "")
	r.add("s3", "sequential read of the raw view, s3://", mbps(size, median(readS3)), ratio(median(readLocal), median(readS3), "s3/local (target >= 0.8x)"))
	r.add("s3", "mount of the s3://golden/lib/ prefix, 1,000 archives (ready)", fmt.Sprintf("%.0f ms", median(mountLib)*1000), "target < 1 s")
	fmt.Println()
	return nil
}
