package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/ovfmount/ovfmount/internal/sample"
)

var (
	fuseminBin   = flag.String("fusemin", "", "the fusemin binary for the roundtrip section (default: built with go build into the fixtures folder)")
	rtArgs       = flag.String("roundtrip-args", "", "roundtrip: extra ovfmount arguments, space-separated (e.g. --direct-io)")
	rtProfile    = flag.String("roundtrip-profile", "", "roundtrip: write a CPU profile of each ovfmount mount to this file (the last turn's is kept)")
	rtTurns      = flag.Int("roundtrip-turns", 5, "roundtrip: turns of each server")
	rtSeconds    = flag.Float64("roundtrip-seconds", 3, "roundtrip: seconds of random reads per turn")
	rtFuseminOpt = flag.String("roundtrip-fusemin-args", "", "roundtrip: extra fusemin arguments, space-separated (e.g. -reply=vector)")
)

const (
	rtDiskSize = 64 << 20 // the fixture disk
	rtWarmSpan = 16 << 20 // reads stay in the disk's first 16 MiB: 256 grains, well inside the 64 MiB decoded cache
)

// benchRoundtrip measures the cost of one FUSE round trip: one reader's
// random 4 KiB reads, opened with O_DIRECT, over ovfmount's raw view of a
// streamOptimized VMDK whose grains are all decoded and cached already
// (warm grains: no inflate, no archive read), and over fusemin, a minimal
// go-fuse server with the same mount options that answers from memory.
//
// O_DIRECT rather than a --direct-io mount: it keeps both servers' default
// mounts (FOPEN_KEEP_CACHE, as users run ovfmount) and still makes every
// pread(2) a FUSE READ of exactly 4 KiB, with no page cache between the
// reader and the daemon and no read-ahead. The reads only fetch what the
// daemon answers; the difference between the two is what ovfmount does
// per request beyond go-fuse itself.
func benchRoundtrip(r *report) error {
	heading("FUSE round trip: random 4 KiB O_DIRECT reads of warm data, one reader")
	raw, err := cached("roundtrip-64M.raw", func(path string) error { return realBinaries(path, rtDiskSize) })
	if err != nil {
		return err
	}
	img, err := cached("roundtrip-64M-stream.vmdk", func(path string) error {
		_, err := timeCmd("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, path)
		return err
	})
	if err != nil {
		return err
	}
	archive, err := benchOVA("roundtrip-64M.ova", img, "disk1.vmdk")
	if err != nil {
		return err
	}
	fusemin, err := fuseminBinary()
	if err != nil {
		return err
	}
	d := time.Duration(*rtSeconds * float64(time.Second))
	var extra []string
	if *rtProfile != "" {
		extra = append(extra, "--cpu-profile="+*rtProfile)
	}
	extra = append(extra, strings.Fields(*rtArgs)...)
	cpu := make([][]float64, 3) // each turn's daemon CPU time per read, in seconds
	ovf := func() (float64, error) {
		mnt, _, err := mountOvfmount(archive, extra...)
		if err != nil {
			return 0, err
		}
		defer unmount(mnt)
		return warmRandomReads(filepath.Join(mnt, "disks/disk1.vmdk.raw"), d, servingPID(mnt), &cpu[1])
	}
	minimalWith := func(i int, args ...string) func() (float64, error) {
		return func() (float64, error) {
			args := append(args, strings.Fields(*rtFuseminOpt)...)
			return fuseminMounted(fusemin, rtDiskSize, args, func(path string, pid int) (float64, error) {
				return warmRandomReads(path, d, pid, &cpu[i])
			})
		}
	}
	// Each turn's figure is kept too: on a small VM a mount's rate can
	// differ by 2x from the next one's (where the kernel places the daemon's
	// threads against the reader), and the range shows how far.
	all := make([][]float64, 3)
	keep := func(i int, run func() (float64, error)) func() (float64, error) {
		return func() (float64, error) {
			x, err := run()
			all[i] = append(all[i], x)
			return x, err
		}
	}
	// fusemin twice: answering with fuse.ReadResultData, as a minimal
	// server is written, go-fuse first tries to splice it (a pipe, the
	// header written into it, then a fallback to writev: a third of
	// fusemin's CPU time); with fuse.ReadResultVector it goes straight to
	// writev, as ovfmount's replies do. The second is the stricter
	// reference.
	rates, err := inTurns(*rtTurns, []string{archive}, keep(0, minimalWith(0)), keep(1, ovf), keep(2, minimalWith(2, "-reply=vector")))
	if err != nil {
		return err
	}
	us := func(rate float64, xs []float64) string {
		lo, hi := xs[0], xs[0]
		for _, x := range xs {
			lo, hi = min(lo, x), max(hi, x)
		}
		return fmt.Sprintf("%.0f /s, %.1f us (%.0f-%.0f us)", rate, 1e6/rate, 1e6/hi, 1e6/lo)
	}
	r.add("roundtrip", "fusemin, ReadResultData: 4 KiB O_DIRECT reads", us(rates[0], all[0]), "")
	r.add("roundtrip", "fusemin, ReadResultVector: 4 KiB O_DIRECT reads", us(rates[2], all[2]), "")
	r.add("roundtrip", "ovfmount: 4 KiB O_DIRECT reads of the raw view, warm grains", us(rates[1], all[1]),
		fmt.Sprintf("%.2fx / %.2fx time per read ovfmount/fusemin data/vector", rates[0]/rates[1], rates[2]/rates[1]))
	// CPU time is what the daemon spends per read, whatever else the
	// machine runs meanwhile: a steadier figure than time on a shared VM.
	c := []float64{median(cpu[0]), median(cpu[1]), median(cpu[2])}
	r.add("roundtrip", "fusemin, ReadResultData: daemon CPU time per read", fmt.Sprintf("%.1f us", c[0]*1e6), "")
	r.add("roundtrip", "fusemin, ReadResultVector: daemon CPU time per read", fmt.Sprintf("%.1f us", c[2]*1e6), "")
	r.add("roundtrip", "ovfmount: daemon CPU time per read", fmt.Sprintf("%.1f us", c[1]*1e6),
		fmt.Sprintf("%.2fx / %.2fx ovfmount/fusemin data/vector", c[1]/c[0], c[1]/c[2]))
	fmt.Println()
	return nil
}

// realBinaries writes size bytes of real files from /usr, one after the
// other: a disk whose every grain holds data that compresses like an
// appliance's binaries.
func realBinaries(path string, size int64) error {
	files := path + ".files"
	defer os.RemoveAll(files)
	if err := sample.CopyRealFiles(files, size); err != nil {
		return err
	}
	var names []string
	filepath.WalkDir(files, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	left := size
	for _, p := range names {
		if left == 0 {
			break
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		n, err := io.CopyN(out, f, left)
		f.Close()
		if err != nil && err != io.EOF {
			return err
		}
		left -= n
	}
	if err := out.Truncate(size); err != nil { // zero-filled tail if /usr ran out
		return err
	}
	return out.Close()
}

// fuseminBinary returns the fusemin to measure, building it when -fusemin
// is not given.
func fuseminBinary() (string, error) {
	if *fuseminBin != "" {
		return filepath.Abs(*fuseminBin)
	}
	path := filepath.Join(*work, "fusemin")
	out, err := exec.Command("go", "build", "-o", path, "github.com/ovfmount/ovfmount/internal/cmd/fusemin").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building fusemin (or pass -fusemin): %v\n%s", err, out)
	}
	return path, nil
}

// fuseminMounted runs f on the file of a fresh fusemin mount.
func fuseminMounted(bin string, size int64, args []string, f func(path string, pid int) (float64, error)) (float64, error) {
	mnt, err := os.MkdirTemp(*work, "fm-")
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, append(append([]string{fmt.Sprintf("-size=%d", size)}, args...), mnt)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		unmount(mnt)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return 0, fmt.Errorf("fusemin did not mount: %q %v", line, err)
	}
	return f(filepath.Join(mnt, "file"), cmd.Process.Pid)
}

// warmRandomReads opens path with O_DIRECT, reads its first rtWarmSpan
// bytes once (so that a decoding server has every unit in its cache), then
// does one reader's random 4 KiB-aligned 4 KiB preads within that span
// for d, and returns reads per second. It appends the CPU time the
// process pid (the daemon) spent per read to cpu.
func warmRandomReads(path string, d time.Duration, pid int, cpu *[]float64) (float64, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECT|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	buf := alignedBuffer(1 << 20)
	for off := int64(0); off < rtWarmSpan; off += int64(len(buf)) {
		if n, err := pread(fd, buf, off); err != nil || n != len(buf) {
			return 0, fmt.Errorf("warming %s at %d: %d bytes, %v", path, off, n, err)
		}
	}
	page := buf[:4096]
	rng := rand.New(rand.NewPCG(15, 4))
	pages := int64(rtWarmSpan / 4096)
	n := 0
	cpu0 := cpuNanos(pid)
	start := time.Now()
	for {
		// Check the clock every 64 reads: time.Since is not free at these rates.
		for range 64 {
			if k, err := pread(fd, page, rng.Int64N(pages)*4096); err != nil || k != len(page) {
				return 0, fmt.Errorf("reading %s: %d bytes, %v", path, k, err)
			}
		}
		n += 64
		if time.Since(start) >= d {
			break
		}
	}
	secs := time.Since(start).Seconds()
	*cpu = append(*cpu, float64(cpuNanos(pid)-cpu0)/1e9/float64(n))
	return float64(n) / secs, nil
}

// pread is syscall.Pread retried when a signal interrupts it (the Go
// runtime preempts threads with signals; package os retries the same way).
func pread(fd int, b []byte, off int64) (int, error) {
	for {
		n, err := syscall.Pread(fd, b, off)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// cpuNanos is the CPU time all threads of pid have had so far, from the
// scheduler's per-thread statistics (nanoseconds, unlike /proc/pid/stat's
// clock ticks).
func cpuNanos(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		var ns int64
		fmt.Sscan(string(b), &ns)
		total += ns
	}
	return total
}

// alignedBuffer is n bytes starting on a page boundary, as O_DIRECT wants.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+4096)
	skip := (4096 - int(uintptr(unsafe.Pointer(&b[0]))%4096)) % 4096
	return b[skip : skip+n]
}

// servingPID finds the process serving mnt by its command line, whatever
// the binary is called (-bin may name a copy).
func servingPID(mnt string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || e.Name() == fmt.Sprint(os.Getpid()) {
			continue
		}
		for _, arg := range strings.Split(string(cmd), "\x00") {
			if arg == mnt {
				var pid int
				fmt.Sscan(e.Name(), &pid)
				return pid
			}
		}
	}
	return 0
}
