package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ovfmount/ovfmount/internal/nginx"
)

// benchRemote measures mounting and reading an OVA from a URL, served by
// nginx on loopback, against the same archive as a local file: the cost
// of mounting (requests and time), the sequential read of a raw view, and
// what re-reading costs.
func benchRemote(r *report) error {
	heading("an OVA from a URL (nginx on loopback) against the same local file")
	if _, err := nginx.Binary(); err != nil {
		r.add("remote", "nginx", "n/a", err.Error())
		return nil
	}
	big, _, err := manifestOVA()
	if err != nil {
		return err
	}
	img, err := benchImage("disk-4G-stream.vmdk", "vmdk", "-o", "subformat=streamOptimized")
	if err != nil {
		return err
	}
	vmdk, err := benchOVA("vmdk-4G.ova", img, "disk1.vmdk")
	if err != nil {
		return err
	}
	if err := warm(big, vmdk); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(*work, "nginx-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := nginx.Start(dir, *work)
	if err != nil {
		return err
	}
	defer srv.Stop()
	url := func(p string) string { return srv.URL + "/" + filepath.Base(p) }
	st, err := os.Stat(big)
	if err != nil {
		return err
	}

	// Mounting: the median of five, each a fresh process with no cache.
	var secs, local []float64
	requests := 0
	for range 5 {
		before := srv.Requests()
		mnt, t, err := mountOvfmount(url(big), "--verify=off", "--cache-dir=")
		if err != nil {
			return err
		}
		unmount(mnt)
		secs, requests = append(secs, t), max(requests, srv.Requests()-before)
		mnt, t, err = mountOvfmount(big, "--verify=off", "--cache-dir=")
		if err != nil {
			return err
		}
		unmount(mnt)
		local = append(local, t)
	}
	size := fmt.Sprintf("%.1f GB", float64(st.Size())/1e9)
	r.add("remote", "ovfmount URL: mount of a "+size+" OVA, until ready", fmt.Sprintf("%.0f ms", 1000*median(secs)),
		fmt.Sprintf("%d requests at most; local file: %.0f ms", requests, 1000*median(local)))

	// Sequential read of the raw view: the median of three fresh mounts
	// each way, the archive in the page cache both ways.
	read := func(archive string) (int64, float64, error) {
		var times []float64
		var n int64
		for range 3 {
			mnt, _, err := mountOvfmount(archive, "--verify=off", "--cache-dir=")
			if err != nil {
				return 0, 0, err
			}
			k, t, err := readSeq(filepath.Join(mnt, "disks/disk1.vmdk.raw"), 0)
			unmount(mnt)
			if err != nil {
				return 0, 0, err
			}
			n, times = k, append(times, t)
		}
		return n, median(times), nil
	}
	n, remoteSecs, err := read(url(vmdk))
	if err != nil {
		return err
	}
	_, localSecs, err := read(vmdk)
	if err != nil {
		return err
	}
	r.add("remote", "local file: sequential read of disks/disk1.vmdk.raw", mbps(n, localSecs), "")
	r.add("remote", "ovfmount URL: sequential read of disks/disk1.vmdk.raw", mbps(n, remoteSecs), ratio(localSecs, remoteSecs, "of the local read"))

	// Re-reading: 32 MiB of the raw view, read, then read again after
	// the kernel's page cache is dropped, so the second read reaches the
	// daemon and only its block cache stands between it and the server.
	// Read-ahead may still fetch blocks past the range; what counts is
	// that no block of the first read is fetched again.
	if !dropCaches() {
		r.add("remote", "ovfmount URL: re-reading 32 MiB", "n/a", "dropping the page cache needs root")
	} else {
		mnt, _, err := mountOvfmount(url(vmdk), "--verify=off", "--cache-dir=")
		if err != nil {
			return err
		}
		view := filepath.Join(mnt, "disks/disk1.vmdk.raw")
		first := srv.Requests()
		err = readRange(view, 1<<30, 32<<20)
		second := srv.Requests()
		dropCaches()
		if err == nil {
			err = readRange(view, 1<<30, 32<<20)
		}
		unmount(mnt)
		if err != nil {
			return err
		}
		fetched := logRanges(srv.Log(first)[:second-first])
		again, refetched := 0, int64(0)
		for _, rg := range logRanges(srv.Log(second)) {
			again++
			for _, f := range fetched {
				refetched += max(0, min(rg[1], f[1])-max(rg[0], f[0])+1)
			}
		}
		r.add("remote", "ovfmount URL: re-reading 32 MiB of the raw view", fmt.Sprintf("%d bytes fetched again", refetched),
			fmt.Sprintf("first read: %d requests; re-read: %d (read-ahead past the range)", second-first, again))
	}
	fmt.Println()
	return nil
}

// readRange reads n bytes of path from off, in 1 MiB reads.
func readRange(path string, off, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for done := int64(0); done < n; done += int64(len(buf)) {
		if _, err := f.ReadAt(buf, off+done); err != nil {
			return err
		}
	}
	return nil
}

// logRanges is the byte ranges of the requests in access log lines.
func logRanges(lines []string) [][2]int64 {
	var out [][2]int64
	for _, l := range lines {
		var a, b int64
		i := strings.Index(l, `"bytes=`)
		if i < 0 {
			continue
		}
		if _, err := fmt.Sscanf(l[i:], `"bytes=%d-%d"`, &a, &b); err == nil {
			out = append(out, [2]int64{a, b})
		}
	}
	return out
}
