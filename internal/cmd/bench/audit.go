package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// auditFor is how long each sequential measurement of the audit section
// reads (the random ones run randomFor).
const auditFor = 5 * time.Second

// benchAudit measures what --audit-log costs a reader: sequential and
// random 4 KiB reads of the bench VMDK's raw view, on mounts with and
// without the log, in turns. Both verify nothing (--verify=off), so the
// difference is the log's: answering OPEN and RELEASE, recording each read
// before it is served, writing and fsyncing once a second. The last log
// written is then checked with audit verify, so the figures are of a log
// that holds what it should.
func benchAudit(r *report) error {
	heading("read audit log: --audit-log on against off, 4 KiB reads of the VMDK's raw view")
	img, archive, _, err := benchVMDKOVA()
	if err != nil {
		return err
	}
	logs, err := os.MkdirTemp(*work, "audit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logs)
	const view = "disks/disk1.vmdk.raw"
	var last string
	n := 0
	// The daemon's CPU seconds per GiB read sequentially, off and on: on a
	// shared machine throughput drifts with the neighbours' load, the
	// work the daemon does per byte much less.
	var cpu [2][]float64
	// on runs measure against a fresh mount, with a log of its own when
	// audit is set.
	on := func(audit bool, measure func(path string) (float64, error)) func() (float64, error) {
		return func() (float64, error) {
			args := []string{"--verify=off"}
			if audit {
				n++
				last = filepath.Join(logs, fmt.Sprintf("reads-%d.log", n))
				args = append(args, "--audit-log", last)
			}
			mnt, _, err := mountOvfmount(archive, args...)
			if err != nil {
				return 0, err
			}
			defer unmount(mnt)
			return measure(filepath.Join(mnt, view))
		}
	}
	seq := func(audit int) func(path string) (float64, error) {
		return func(path string) (float64, error) {
			pid := daemonPID(filepath.Dir(filepath.Dir(path)))
			before := cpuSeconds(pid)
			n, secs, err := readSeqSize(path, 4096, auditFor)
			if used := cpuSeconds(pid) - before; n > 0 && pid != 0 {
				cpu[audit] = append(cpu[audit], used/(float64(n)/(1<<30)))
			}
			return float64(n) / secs, err
		}
	}
	rates, err := inTurns(turns, []string{archive, img},
		on(false, seq(0)), on(true, seq(1)),
		on(false, func(p string) (float64, error) { return randomReadsN(p, 1, randomFor) }),
		on(true, func(p string) (float64, error) { return randomReadsN(p, 1, randomFor) }),
		on(false, func(p string) (float64, error) { return randomReadsN(p, 4, randomFor) }),
		on(true, func(p string) (float64, error) { return randomReadsN(p, 4, randomFor) }))
	if err != nil {
		return err
	}
	mb := func(x float64) string { return fmt.Sprintf("%.0f MB/s", x/1e6) }
	r.add("audit", "sequential 4 KiB reads, no audit log", mb(rates[0]), "")
	r.add("audit", "sequential 4 KiB reads, --audit-log", mb(rates[1]), ratio(rates[1], rates[0], "of off (target >= 0.8x)"))
	if len(cpu[0]) > 0 && len(cpu[1]) > 0 {
		off, on := median(cpu[0]), median(cpu[1])
		r.add("audit", "  the daemon's CPU per GiB read, no audit log", fmt.Sprintf("%.2f s", off), "")
		r.add("audit", "  the daemon's CPU per GiB read, --audit-log", fmt.Sprintf("%.2f s", on), ratio(on, off, "of off"))
	}
	r.add("audit", "random 4 KiB reads, 1 reader, no audit log", perSec(rates[2]), "")
	r.add("audit", "random 4 KiB reads, 1 reader, --audit-log", perSec(rates[3]), ratio(rates[3], rates[2], "of off (target >= 0.8x)"))
	r.add("audit", "random 4 KiB reads, 4 readers, no audit log", perSec(rates[4]), "")
	r.add("audit", "random 4 KiB reads, 4 readers, --audit-log", perSec(rates[5]), ratio(rates[5], rates[4], "of off (target >= 0.8x)"))

	// The daemon closes its log after the unmount: wait for the stop line.
	stopped := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(last); err == nil && strings.Contains(lastLineOf(b), `"type":"stop"`) {
			stopped = true
			break
		}
	}
	if !stopped {
		return fmt.Errorf("%s: no stop line 30 s after the unmount", last)
	}
	out, err := exec.Command(*binary, "audit", "verify", "--ranges", "0", last).CombinedOutput()
	if err != nil {
		return fmt.Errorf("audit verify %s: %v\n%s", last, err, out)
	}
	st, err := os.Stat(last)
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(out), "\n")
	r.add("audit", "the last log (4 random readers): audit verify", fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20)), strings.TrimPrefix(first, last+": "))
	fmt.Println()
	return nil
}

// readSeqSize reads a file sequentially with reads of size bytes for at
// most limit, and returns bytes read and seconds.
func readSeqSize(path string, size int, limit time.Duration) (int64, float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, size)
	var n int64
	start := time.Now()
	for time.Since(start) < limit {
		k, err := f.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, 0, err
		}
	}
	return n, time.Since(start).Seconds(), nil
}

func lastLineOf(b []byte) string {
	s := strings.TrimSuffix(string(b), "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// cpuSeconds is the user and system time of process pid so far (0 when it
// cannot be read), from /proc/PID/stat, in the kernel's 100 Hz ticks.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}
