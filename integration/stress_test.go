package integration

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestStress has 32 readers do random-offset reads over every member and
// every raw view of an OVA holding one disk of each format, for
// OVFMOUNT_STRESS_SECONDS (5 by default; `make stress` runs five minutes),
// comparing every read with an oracle copy. It reports reads per second,
// and requires no mismatch, no error, and a bounded peak RSS.
func TestStress(t *testing.T) {
	seconds := 5
	if s, err := strconv.Atoi(os.Getenv("OVFMOUNT_STRESS_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	dir := t.TempDir()
	images := map[string]struct{ format, opts string }{
		"disk1.vmdk":  {"vmdk", "subformat=streamOptimized"},
		"disk2.vhd":   {"vpc", ""},
		"disk3.qcow2": {"qcow2", "compression_type=zlib"},
		"disk4.vhdx":  {"vhdx", ""},
	}
	members := map[string]string{}
	oracles := map[string]string{} // path in the mount -> file with its bytes
	for name, img := range images {
		p := filepath.Join(dir, name)
		args := []string{"convert", "-O", img.format}
		if img.opts != "" {
			args = append(args, "-o", img.opts)
		}
		if img.format == "qcow2" {
			args = append(args, "-c")
		}
		testutil.QemuImg(t, append(args, raw, p)...)
		members[name] = p
		oracles[name] = p
		oracles["disks/"+name+".raw"] = testutil.RawOracle(t, dir, p, img.format)
	}
	data := filepath.Join(dir, "data.bin")
	b := make([]byte, 5<<20+321)
	rand.New(rand.NewSource(3)).Read(b)
	os.WriteFile(data, b, 0o644)
	members["data.bin"], oracles["data.bin"] = data, data
	m := mountArchive(t, packOVA(t, members, "disk1.vmdk", "disk2.vhd", "disk3.qcow2", "disk4.vhdx"), "--verify=off")

	type target struct {
		path            string
		mounted, oracle *os.File
		size            int64
	}
	var targets []target
	for path, oracle := range oracles {
		f, err := os.Open(m.path(path))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		o, _ := os.Open(oracle)
		defer o.Close()
		st, _ := o.Stat()
		targets = append(targets, target{path, f, o, st.Size()})
	}
	var reads, mismatches, failures atomic.Int64
	var firstMu sync.Mutex
	first := map[string]string{} // the first failure of each file, for the report
	note := func(path, what string) {
		firstMu.Lock()
		if _, ok := first[path]; !ok {
			first[path] = what
		}
		firstMu.Unlock()
	}
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			got, want := make([]byte, 256<<10), make([]byte, 256<<10)
			for time.Now().Before(deadline) {
				tg := targets[rng.Intn(len(targets))]
				off := rng.Int63n(tg.size)
				n := 1 + rng.Intn(len(got))
				k, err := tg.mounted.ReadAt(got[:n], off)
				kw, _ := tg.oracle.ReadAt(want[:n], off)
				reads.Add(1)
				switch {
				case k != kw && err != nil:
					failures.Add(1)
					note(tg.path, fmt.Sprintf("read %d at %d: %v", n, off, err))
				case k != kw || !bytes.Equal(got[:k], want[:kw]):
					mismatches.Add(1)
					note(tg.path, fmt.Sprintf("read %d at %d: %d bytes differ from the oracle's %d", n, off, k, kw))
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(reads.Load()) / float64(seconds)
	t.Logf("%d reads in %d s (%.0f reads/s) by 32 readers over %d files", reads.Load(), seconds, rate, len(targets))
	if mismatches.Load() != 0 || failures.Load() != 0 || reads.Load() == 0 {
		t.Errorf("%d mismatches and %d failures in %d reads; first per file: %v\nlog tail:\n%s", mismatches.Load(), failures.Load(), reads.Load(), first, tail(readFile(m.logFile), 2000))
	}
	// 64 MiB of cache and the kernel's buffers, with generous room.
	checkRSS(t, m.dir, 256<<20)
}
