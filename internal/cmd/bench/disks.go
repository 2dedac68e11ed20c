package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovfmount/ovfmount/internal/sample"
)

const (
	benchDiskSize    = 4 << 30
	benchDiskContent = 3_000_000_000
)

// benchRaw is the 4 GiB partitioned disk with an ext4 file system holding
// about 3 GB of real files from /usr: it compresses like a real appliance.
func benchRaw() (string, error) {
	return cached("disk-4G.raw", func(path string) error {
		files := path + ".files"
		defer os.RemoveAll(files)
		if err := sample.CopyRealFiles(files, benchDiskContent); err != nil {
			return err
		}
		return sample.PartitionedDisk(path, files, benchDiskSize)
	})
}

// benchImage converts the raw disk with qemu-img into another format.
func benchImage(name, format string, opts ...string) (string, error) {
	raw, err := benchRaw()
	if err != nil {
		return "", err
	}
	return cached(name, func(path string) error {
		args := append([]string{"convert", "-O", format}, opts...)
		_, err := timeCmd("qemu-img", append(args, raw, path)...)
		return err
	})
}

// benchOVA packs one disk image into an OVA as disk1.<ext>.
func benchOVA(name, img, member string) (string, error) {
	return cached(name, func(path string) error {
		return tarFiles(path, map[string]string{member: img})
	})
}

// virtualSize is the disk size qemu-img reports for img.
func virtualSize(img, format string) (int64, error) {
	out, err := exec.Command("qemu-img", "info", "-f", format, "--output=json", img).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, `"virtual-size"`) {
			return strconv.ParseInt(strings.Trim(strings.Fields(line)[1], ","), 10, 64)
		}
	}
	return 0, fmt.Errorf("qemu-img info %s: no virtual size", img)
}

// qemuNull is one timed qemu-img convert -O raw of img into qemu's null
// driver: the decoding cost alone, with no output file to write.
func qemuNull(img, format string, size int64) func() (float64, error) {
	target := fmt.Sprintf(`json:{"driver":"raw","file":{"driver":"null-co","size":%d}}`, size)
	return func() (float64, error) {
		return timeCmd("qemu-img", "convert", "-f", format, "-n", "-O", "raw", img, target)
	}
}

// qemuFile is one timed qemu-img convert -O raw into a file next to the
// fixtures (the host page cache absorbs the writes), as a user runs it.
func qemuFile(img, format string) func() (float64, error) {
	out := filepath.Join(*work, "convert-out.raw")
	return func() (float64, error) {
		defer os.Remove(out)
		return timeCmd("qemu-img", "convert", "-f", format, "-O", "raw", img, out)
	}
}

// daemonPID finds the ovfmount process serving mnt.
func daemonPID(mnt string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmd), "\x00")
		if len(args) > 0 && isOvfmount(args[0]) && strings.Contains(string(cmd), mnt) {
			return pid
		}
	}
	return 0
}

// isOvfmount tells whether a process's argv[0] is the binary measured:
// -bin, under whatever name it was given.
func isOvfmount(arg0 string) bool {
	return strings.HasSuffix(arg0, "ovfmount") || filepath.Base(arg0) == filepath.Base(*binary)
}

// peakRSS reads a process's high-water resident set (VmHWM) in bytes.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// viewStats is what reads of a raw view through fresh mounts saw.
type viewStats struct {
	size int64 // bytes in the view
	rss  int64 // the daemon's largest peak RSS
}

// viewRead is one first sequential read of a file of archive through a
// fresh mount, in seconds; it records the size and the daemon's peak RSS
// in st.
func viewRead(archive, file string, st *viewStats, args ...string) func() (float64, error) {
	return func() (float64, error) {
		mnt, _, err := mountOvfmount(archive, args...)
		if err != nil {
			return 0, err
		}
		defer unmount(mnt)
		n, secs, err := readSeq(filepath.Join(mnt, file), 0)
		st.size = n
		st.rss = max(st.rss, peakRSS(daemonPID(mnt)))
		return secs, err
	}
}

// vmdkmounted runs f on the disk of img mounted by libvmdk's vmdkmount
// (benchVMDK checks that it is installed).
func vmdkmounted(img string, f func(path string) (float64, error)) (float64, error) {
	mnt, err := os.MkdirTemp(*work, "vm-")
	if err != nil {
		return 0, err
	}
	defer unmount(mnt)
	if out, err := exec.Command("vmdkmount", img, mnt).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("vmdkmount: %v %s", err, out)
	}
	for range 100 {
		if _, err := os.Stat(filepath.Join(mnt, "vmdk1")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return f(filepath.Join(mnt, "vmdk1"))
}

// vmdkmountRead is one sequential read of img's disk through vmdkmount,
// in seconds; it records the size in size.
func vmdkmountRead(img string, size *int64) func() (float64, error) {
	return func() (float64, error) {
		return vmdkmounted(img, func(p string) (float64, error) {
			n, secs, err := readSeq(p, 0)
			*size = n
			return secs, err
		})
	}
}

func mib(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }

// rss is a peak RSS cell: n/a when the daemon was never found, rather
// than a figure of 0 that no process had.
func rss(b int64) string {
	if b == 0 {
		return "n/a (daemon not found in /proc)"
	}
	return mib(b)
}
