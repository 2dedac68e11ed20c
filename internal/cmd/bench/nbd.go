package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// benchNBD copies the bench VMDK's raw view over NBD with nbdcopy, from
// `ovfmount serve --nbd` and from `qemu-nbd -r` exporting the same VMDK
// where it lies inside the archive (its offset and size given to qemu's
// raw driver), the way to serve an OVA's disk without extracting it.
func benchNBD(r *report) error {
	heading("NBD export of the streamOptimized VMDK's raw view (4 GiB disk, 3 GB of files), copied with nbdcopy")
	for _, tool := range []string{"nbdcopy", "nbdinfo", "qemu-nbd"} {
		if _, err := exec.LookPath(tool); err != nil {
			r.add("nbd", tool, "n/a", "not installed (Debian libnbd-bin, qemu-utils)")
			fmt.Println()
			return nil
		}
	}
	_, archive, size, err := benchVMDKOVA()
	if err != nil {
		return err
	}
	off, n, err := memberRange(archive, "disk1.vmdk")
	if err != nil {
		return err
	}
	sock := filepath.Join(*work, "bench-nbd.sock")
	ours := func() (float64, error) {
		return nbdCopyFrom(sock, "disk1.vmdk.raw", *binary, "serve", "--nbd", "unix:"+sock, "--log-level=warn", archive)
	}
	opts := fmt.Sprintf("driver=vmdk,file.driver=raw,file.offset=%d,file.size=%d,file.file.driver=file,file.file.filename=%s", off, n, archive)
	qemu := func() (float64, error) {
		return nbdCopyFrom(sock, "", "qemu-nbd", "-r", "-k", sock, "--image-opts", opts)
	}
	secs, err := inTurns(turns, []string{archive}, ours, qemu)
	if err != nil {
		return err
	}
	r.add("nbd", "ovfmount serve --nbd: nbdcopy of disk1.vmdk.raw to null:", mbps(size, secs[0]), "")
	r.add("nbd", "qemu-nbd -r of the VMDK inside the archive: the same", mbps(size, secs[1]), ratio(secs[1], secs[0], "ovfmount/qemu-nbd"))
	fmt.Println()
	return nil
}

// nbdCopyFrom starts a server (name, args) on the Unix socket sock, waits
// until it answers, and times nbdcopy of the export to null:.
func nbdCopyFrom(sock, export, name string, args ...string) (float64, error) {
	os.Remove(sock)
	srv := exec.Command(name, args...)
	var stderr strings.Builder
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-done
		}
		os.Remove(sock)
	}()
	uri := "nbd+unix:///" + export + "?socket=" + sock
	for deadline := time.Now().Add(30 * time.Second); exec.Command("nbdinfo", "--list", "nbd+unix:///?socket="+sock).Run() != nil; {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s did not serve on %s: %s", name, sock, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return timeCmd("nbdcopy", uri, "null:")
}
