package main

import (
	"bufio"
	"errors"
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
)

// readSeq reads a file sequentially with 1 MiB reads, as dd bs=1M does, for
// at most limit (0: to the end), and returns bytes read and seconds.
func readSeq(path string, limit time.Duration) (int64, float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	start := time.Now()
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, 0, err
		}
		if limit > 0 && time.Since(start) > limit {
			break
		}
	}
	return n, time.Since(start).Seconds(), nil
}

// timeCmd runs a command and returns its wall time.
func timeCmd(name string, args ...string) (float64, error) {
	start := time.Now()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return time.Since(start).Seconds(), nil
}

// mountOvfmount mounts archive at a fresh folder with the real command and
// returns the folder and how long the command took to report it ready.
func mountOvfmount(archive string, extra ...string) (string, float64, error) {
	mnt, err := os.MkdirTemp(*work, "mnt-")
	if err != nil {
		return "", 0, err
	}
	args := append(append([]string{"--log-level=warn"}, extra...), archive, mnt)
	secs, err := timeCmd(*binary, args...)
	return mnt, secs, err
}

// as runs f with bin as the ovfmount binary (see -baseline). inTurns runs
// one measurement at a time, so no other run sees the swap.
func as(bin string, f func() (float64, error)) func() (float64, error) {
	return func() (float64, error) {
		saved := *binary
		*binary = bin
		defer func() { *binary = saved }()
		return f()
	}
}

func unmount(mnt string) {
	for range 50 {
		if exec.Command("fusermount3", "-u", mnt).Run() == nil || exec.Command("fusermount", "-u", mnt).Run() == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Remove(mnt)
}

// warm empties the host page cache where permitted (root) and then reads
// the given files once, so that the cache holds them and little else:
// every tool then starts from the same state, reads the files from memory,
// and has free memory for the page cache it fills (a 4 GiB view, qemu-img's
// output) without waiting for reclaim, which made single runs vary by 3x.
func warm(paths ...string) error {
	dropCaches()
	for _, p := range paths {
		if _, _, err := readSeq(p, 0); err != nil {
			return err
		}
	}
	return nil
}

// dropCaches empties the host page cache where permitted (root), so a
// "first read" really reads the archive.
func dropCaches() bool {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) == nil
}

// medianOf3 runs a timed measurement three times and returns the median:
// a single run of a peer tool varies by a fifth between runs on a small
// VM, and every peer gets the same treatment as ovfmount.
func medianOf3(run func() (float64, error)) (float64, error) {
	var xs []float64
	for range 3 {
		x, err := run()
		if err != nil {
			return 0, err
		}
		xs = append(xs, x)
	}
	return median(xs), nil
}

// inTurns runs timed measurements n times each, in turns (a, b, c, a, b,
// c, ...), each turn from the same warmed page cache, and returns each
// one's median. Run after run, throughput on this kind of VM drifts by up
// to 2x within minutes while the host takes back and hands out memory, so
// figures that are compared must be taken in turns, not one tool's runs
// after another's.
func inTurns(n int, warmed []string, runs ...func() (float64, error)) ([]float64, error) {
	xs := make([][]float64, len(runs))
	for range n {
		for i, run := range runs {
			if err := warm(warmed...); err != nil {
				return nil, err
			}
			x, err := run()
			if err != nil {
				return nil, err
			}
			xs[i] = append(xs[i], x)
		}
	}
	out := make([]float64, len(runs))
	for i := range xs {
		out[i] = median(xs[i])
	}
	return out, nil
}

// turns is how many times inTurns runs each measurement.
const turns = 3

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// randomFile writes size bytes of fast pseudo-random data.
func randomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 4<<20)
	src := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		src.Read(buf)
		n := min(int64(len(buf)), left)
		w.Write(buf[:n])
		left -= n
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// cached returns path, building it with build unless it already exists, so
// repeated runs reuse multi-gigabyte fixtures.
func cached(name string, build func(path string) error) (string, error) {
	path := filepath.Join(*work, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Printf("  building %s ...\n", name)
	// Build under the final file name, in a scratch folder: some formats
	// record their own file name (a VMDK's embedded descriptor names its
	// extent, and libvmdk opens that name).
	dir, err := os.MkdirTemp(*work, ".building-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, name)
	if err := build(tmp); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

var errSkip = errors.New("skipped")
