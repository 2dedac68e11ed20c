package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ovfmount/ovfmount/internal/sample"
)

// randomFor is how long each random-read measurement runs.
const randomFor = 5 * time.Second

// benchRandom measures random 4 KiB reads of the raw views of the bench's
// streamOptimized VMDK and zlib QCOW2, by one reader and by four, on the
// mount users get by default once the disk is verified, on the same mount
// with --verify=off, and for the VMDK on vmdkmount (libvmdk), which is
// what people otherwise mount such a disk with. No FUSE peer for QCOW2 is
// packaged here (qemu-storage-daemon's FUSE export is not in Debian's
// qemu-utils), so its rows compare the two modes only.
//
// "Verified" is set up the way a user gets it: `ovfmount verify` hashes
// the archive once and keeps its chunk table in a cache folder, and the
// mounts that share the folder start with the disk verified; the bench
// still waits for the view's user.ovfmount.verify attribute to say so.
func benchRandom(r *report) error {
	heading("random 4 KiB reads of the raw views, one reader and four")
	for _, d := range []struct {
		name, img, format string
		opts              []string
		member            string
		peer              bool
	}{
		{"vmdk", "disk-4G-stream.vmdk", "vmdk", []string{"-o", "subformat=streamOptimized"}, "disk1.vmdk", true},
		{"qcow2 zlib", "disk-4G-zlib.qcow2", "qcow2", []string{"-c", "-o", "compression_type=zlib"}, "disk1.qcow2", false},
	} {
		img, err := benchImage(d.img, d.format, d.opts...)
		if err != nil {
			return err
		}
		size, err := virtualSize(img, d.format)
		if err != nil {
			return err
		}
		// An appliance with a SHA256 manifest, so that the disk can be verified.
		archive, err := cached("app-"+d.img+".ova", func(path string) error {
			return sample.WriteOVA(path, sample.Appliance{Name: "app", Disks: []sample.Disk{{File: d.member, Path: img, Capacity: size}}})
		})
		if err != nil {
			return err
		}
		cache, err := verifiedCache(*binary, archive)
		if err != nil {
			return err
		}
		defer os.RemoveAll(cache)
		// The baseline binary gets a cache folder of its own: an earlier
		// version's chunk tables are in another format, and each version
		// discards the other's.
		var before string
		if *baseline != "" {
			if before, err = verifiedCache(*baseline, archive); err != nil {
				return err
			}
			defer os.RemoveAll(before)
		}
		view := filepath.Join("disks", d.member+".raw")
		peer := d.peer
		if _, err := exec.LookPath("vmdkmount"); err != nil && peer {
			peer = false
			r.add("random", "vmdkmount", "n/a", "vmdkmount not installed")
		}
		// A verified disk's sequential reader checks whole chunks and
		// decodes whole grains: the route random reads must not slow.
		var st, bst viewStats
		seq := []func() (float64, error){viewRead(archive, view, &st, "--cache-dir", cache)}
		if before != "" {
			seq = append(seq, as(*baseline, viewRead(archive, view, &bst, "--cache-dir", before)))
		}
		secs, err := inTurns(turns, []string{archive, img}, seq...)
		if err != nil {
			return err
		}
		r.add("random", fmt.Sprintf("%s: ovfmount, disk verified, sequential read of the view", d.name), mbps(st.size, secs[0]), "")
		if before != "" {
			r.add("random", "  the same, baseline binary", mbps(bst.size, secs[1]), ratio(secs[1], secs[0], "this/baseline"))
		}
		for _, readers := range []int{1, 4} {
			runs := []func() (float64, error){
				viewRandomN(archive, view, readers, "verified", "--cache-dir", cache),
				viewRandomN(archive, view, readers, "off", "--verify=off"),
			}
			if before != "" {
				runs = append(runs,
					as(*baseline, viewRandomN(archive, view, readers, "verified", "--cache-dir", before)),
					as(*baseline, viewRandomN(archive, view, readers, "off", "--verify=off")))
			}
			if peer {
				runs = append(runs, func() (float64, error) {
					return vmdkmounted(img, func(p string) (float64, error) { return randomReadsN(p, readers, randomFor) })
				})
			}
			rates, err := inTurns(turns, []string{archive, img}, runs...)
			if err != nil {
				return err
			}
			who := fmt.Sprintf("%d reader", readers)
			if readers > 1 {
				who += "s"
			}
			vmdkmount := 0.0
			if peer {
				vmdkmount = rates[len(rates)-1]
			}
			vs := ratio(rates[0], rates[1], "of --verify=off")
			if peer {
				vs = ratio(rates[0], vmdkmount, "ovfmount/vmdkmount") + ", " + vs
			}
			r.add("random", fmt.Sprintf("%s: ovfmount, disk verified, %s", d.name, who), perSec(rates[0]), vs)
			r.add("random", fmt.Sprintf("%s: ovfmount --verify=off, %s", d.name, who), perSec(rates[1]), ratio(rates[1], vmdkmount, "ovfmount/vmdkmount"))
			if before != "" {
				r.add("random", "  disk verified, baseline binary", perSec(rates[2]), ratio(rates[0], rates[2], "this/baseline"))
				r.add("random", "  --verify=off, baseline binary", perSec(rates[3]), ratio(rates[1], rates[3], "this/baseline"))
			}
			if peer {
				r.add("random", fmt.Sprintf("%s: vmdkmount, %s", d.name, who), perSec(vmdkmount), "")
			}
		}
	}
	fmt.Println()
	return nil
}

// verifiedCache verifies archive with bin into a new cache folder, whose
// chunk tables then make that binary's mounts start verified.
func verifiedCache(bin, archive string) (string, error) {
	cache, err := os.MkdirTemp(*work, "cache-")
	if err != nil {
		return "", err
	}
	if _, err := timeCmd(bin, "verify", "-q", "--cache-dir", cache, archive); err != nil {
		os.RemoveAll(cache)
		return "", fmt.Errorf("%s verify %s: %w", bin, archive, err)
	}
	return cache, nil
}

func perSec(x float64) string { return fmt.Sprintf("%.0f /s", x) }

// viewRandomN is random 4 KiB reads per second of a file of archive by
// readers readers, on a fresh mount with args (so no page is cached by the
// kernel). When want is set, the reads start once the file's
// user.ovfmount.verify attribute says so.
func viewRandomN(archive, file string, readers int, want string, args ...string) func() (float64, error) {
	return func() (float64, error) {
		mnt, _, err := mountOvfmount(archive, args...)
		if err != nil {
			return 0, err
		}
		defer unmount(mnt)
		path := filepath.Join(mnt, file)
		if err := waitStatus(path, want); err != nil {
			return 0, err
		}
		return randomReadsN(path, readers, randomFor)
	}
}

// waitStatus opens path (which starts a lazy mount's verification of the
// file) and waits up to two minutes for its user.ovfmount.verify
// attribute to read want.
func waitStatus(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64)
	got := ""
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n, err := getxattr(path, "user.ovfmount.verify", buf)
		if err != nil {
			return fmt.Errorf("%s: user.ovfmount.verify: %w", path, err)
		}
		if got = string(buf[:n]); got == want {
			return nil
		}
	}
	return fmt.Errorf("%s: still %q after two minutes, want %q", path, got, want)
}

// randomReadsN is readers concurrent readers' random 4 KiB preads over the
// file for d, each with its own descriptor and sequence of 4 KiB-aligned
// offsets, in reads per second all together.
func randomReadsN(path string, readers int, d time.Duration) (float64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	pages := st.Size() / 4096
	var wg sync.WaitGroup
	counts := make([]int, readers)
	errs := make([]error, readers)
	start := time.Now()
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(path)
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			rng := rand.New(rand.NewPCG(1, uint64(i)+2))
			buf := make([]byte, 4096)
			for time.Since(start) < d {
				if _, err := f.ReadAt(buf, rng.Int64N(pages)*4096); err != nil {
					errs[i] = err
					return
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	n := 0
	for i := range readers {
		if errs[i] != nil {
			return 0, errs[i]
		}
		n += counts[i]
	}
	return float64(n) / secs, nil
}

func getxattr(path, attr string, dest []byte) (int, error) { return syscall.Getxattr(path, attr, dest) }
