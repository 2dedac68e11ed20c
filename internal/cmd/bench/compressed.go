package main

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// benchCompressed measures the bench OVA (the 4 GiB disk's
// streamOptimized VMDK) compressed whole: the first mount, which builds
// the seek index, against zcat of the same file; a mount with the saved
// index; and random 4 KiB reads of the raw view once indexed.
func benchCompressed(r *report) error {
	heading("compressed archives: the bench OVA compressed whole (.ova.gz, .ova.xz)")
	_, archive, _, err := benchVMDKOVA()
	if err != nil {
		return err
	}
	gz, err := cached("vmdk-4G.ova.gz", func(path string) error {
		_, err := timeCmd("sh", "-c", fmt.Sprintf("gzip -6 -c '%s' > '%s'", archive, path))
		return err
	})
	if err != nil {
		return err
	}
	if err := warm(gz); err != nil {
		return err
	}
	cache, err := os.MkdirTemp(*work, "cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	// Alternating turns: zcat, then a first mount with an empty cache.
	var zcat, build []float64
	for range 3 {
		z, err := timeCmd("sh", "-c", fmt.Sprintf("zcat < '%s' > /dev/null", gz))
		if err != nil {
			return err
		}
		os.RemoveAll(cache)
		mnt, b, err := mountOvfmount(gz, "--verify=off", "--cache-dir", cache)
		if err != nil {
			return err
		}
		unmount(mnt)
		zcat, build = append(zcat, z), append(build, b)
	}
	mnt, again, err := mountOvfmount(gz, "--verify=off", "--cache-dir", cache)
	if err != nil {
		return err
	}
	rate, err := randomReadsN(filepath.Join(mnt, "disks", "disk1.vmdk.raw"), 1, 10*time.Second)
	unmount(mnt)
	if err != nil {
		return err
	}
	// xz as xz -T0 writes it (-1: 3 MiB blocks; the default -6 gives 24
	// MiB ones and takes an hour to write this fixture on 2 cores), and
	// with 1 MiB blocks.
	xzRates := map[string]float64{}
	xzMounts := map[string]float64{}
	for _, v := range []struct{ name, flags string }{{"vmdk-4G-T0-1.ova.xz", ""}, {"vmdk-4G-1M.ova.xz", "--block-size=1MiB"}} {
		xz, err := cached(v.name, func(path string) error {
			_, err := timeCmd("sh", "-c", fmt.Sprintf("xz -T0 -1 %s -c '%s' > '%s'", v.flags, archive, path))
			return err
		})
		if err != nil {
			return err
		}
		if err := warm(xz); err != nil {
			return err
		}
		mnt, secs, err := mountOvfmount(xz, "--verify=off")
		if err != nil {
			return err
		}
		rate, err := randomReadsN(filepath.Join(mnt, "disks", "disk1.vmdk.raw"), 1, 10*time.Second)
		unmount(mnt)
		if err != nil {
			return err
		}
		xzRates[v.name], xzMounts[v.name] = rate, secs
	}
	z, b := median(zcat), median(build)
	st, _ := os.Stat(gz)
	r.add("compressed", "zcat of the .ova.gz", mbps(st.Size(), z), "")
	r.add("compressed", ".ova.gz: first mount, building the seek index", fmt.Sprintf("%.2f s", b), ratio(b, z, "of zcat's time (target <= 1.2x)"))
	r.add("compressed", ".ova.gz: mount with the saved index", fmt.Sprintf("%.3f s", again), "")
	r.add("compressed", ".ova.gz: random 4 KiB reads of the raw view, one reader", fmt.Sprintf("%.0f /s", rate), "target >= 200/s")
	r.add("compressed", ".ova.xz (xz -T0 -1: 3 MiB blocks): mount", fmt.Sprintf("%.3f s", xzMounts["vmdk-4G-T0-1.ova.xz"]), "")
	r.add("compressed", ".ova.xz (3 MiB blocks): random 4 KiB reads of the raw view, one reader", fmt.Sprintf("%.0f /s", xzRates["vmdk-4G-T0-1.ova.xz"]), "target >= 50/s")
	r.add("compressed", ".ova.xz (--block-size=1MiB): random 4 KiB reads of the raw view, one reader", fmt.Sprintf("%.0f /s", xzRates["vmdk-4G-1M.ova.xz"]), "target >= 50/s")
	fmt.Println()
	return nil
}

// benchLibrary measures a library: a folder of 1,000 small archives
// mounted at once, then a find of the whole tree, which opens each.
func benchLibrary(r *report) error {
	heading("library: a folder of 1,000 archives in one mount")
	dir := filepath.Join(*work, "library-1000")
	if _, err := os.Stat(filepath.Join(dir, "appliance-0999.ova")); err != nil {
		if err := writeLibrary(dir, 1000); err != nil {
			return err
		}
	}
	var ready, find []float64
	for range 3 {
		mnt, secs, err := mountOvfmount(dir)
		if err != nil {
			return err
		}
		f, err := timeCmd("find", mnt)
		unmount(mnt)
		if err != nil {
			return err
		}
		ready, find = append(ready, secs), append(find, f)
	}
	r.add("library", "mount of 1,000 archives (ready)", fmt.Sprintf("%.3f s", median(ready)), "target < 1 s")
	r.add("library", "find of the whole tree (opens each archive)", fmt.Sprintf("%.2f s", median(find)), "")
	fmt.Println()
	return nil
}

// writeLibrary writes n small archives (a descriptor, a manifest and a
// file each) into dir.
func writeLibrary(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		data := []byte(fmt.Sprintf("archive %d\n", i))
		desc := []byte(`<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">` +
			fmt.Sprintf(`<References><File ovf:id="f1" ovf:href="notes.txt" ovf:size="%d"/></References></Envelope>`, len(data)))
		mf := []byte(fmt.Sprintf("SHA256(app.ovf)= %x\nSHA256(notes.txt)= %x\n", sha256.Sum256(desc), sha256.Sum256(data)))
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("appliance-%04d.ova", i)))
		if err != nil {
			return err
		}
		w := tar.NewWriter(f)
		for _, m := range []struct {
			name string
			b    []byte
		}{{"app.ovf", desc}, {"app.mf", mf}, {"notes.txt", data}} {
			w.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.b)), Typeflag: tar.TypeReg})
			w.Write(m.b)
		}
		if err := w.Close(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
