package integration

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

func dropCaches(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dropping the page cache needs root")
	}
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}

// TestArchiveChangesUnderneath: the archive is truncated, rewritten or
// replaced while mounted. Reads then fail with EIO, the log says why, and
// nothing hangs or returns bytes of another layout.
func TestArchiveChangesUnderneath(t *testing.T) {
	for _, change := range []string{"truncated", "rewritten", "replaced"} {
		t.Run(change, func(t *testing.T) {
			archive := smallOVA(t, 8<<20)
			m := mountArchive(t, archive, "--verify=off")
			want := tarExtract(t, archive, "disk1.vmdk")
			f, err := os.Open(m.path("disk1.vmdk"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if b := pread(t, f, 4096, 0); !bytes.Equal(b, want[:4096]) {
				t.Fatal("before the change")
			}
			switch change {
			case "truncated":
				os.Truncate(archive, 3<<20)
			case "rewritten":
				w, _ := os.OpenFile(archive, os.O_WRONLY, 0)
				w.WriteAt([]byte("X"), 5<<20)
				w.Close()
				os.Chtimes(archive, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
			case "replaced":
				other := smallOVA(t, 8<<20)
				b, _ := os.ReadFile(other)
				b = bytes.ReplaceAll(b, []byte("ovfmount "), []byte("different"))
				tmp := archive + ".new"
				os.WriteFile(tmp, b, 0o644)
				os.Rename(tmp, archive)
			}
			dropCaches(t)
			time.Sleep(700 * time.Millisecond) // one watch interval
			done := make(chan error, 1)
			go func() {
				_, err := f.ReadAt(make([]byte, 4096), 6<<20)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, syscall.EIO) {
					t.Errorf("read after the archive was %s: %v, want EIO", change, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the read hangs")
			}
			if log := readFile(m.logFile); !strings.Contains(log, "archive changed since it was indexed") {
				t.Errorf("the log does not say the archive changed:\n%s", log)
			}
		})
	}
}

// TestVanishingStorage: the archive lives on another ovfmount mount, whose
// daemon is then killed: the inner mount's reads fail with EIO instead of
// hanging or returning zeros, and it still unmounts cleanly.
func TestVanishingStorage(t *testing.T) {
	inner := smallOVA(t, 8<<20)
	outer := packOVA(t, map[string]string{"inner.ova": inner})
	o := foreground(t, outer)
	m := mountArchive(t, filepath.Join(o.dir, "inner.ova"), "--verify=off")
	want := tarExtract(t, inner, "disk1.vmdk")
	f, err := os.Open(m.path("disk1.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b := pread(t, f, 4096, 0); !bytes.Equal(b, want[:4096]) {
		t.Fatal("before the storage vanished")
	}
	o.cmd.Process.Kill()
	o.exit(t, 5*time.Second)
	dropCaches(t)
	done := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 4096), 5<<20)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("read from vanished storage: %v, want EIO; the inner daemon's log:\n%s", err, readFile(m.logFile))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read hangs")
	}
	f.Close()
	m.unmount(t)
	exec.Command("fusermount3", "-u", "-z", o.dir).Run()
}

// TestKilledReaderAndBusyUnmount: a reader killed mid-read leaves the
// mount working, and the daemon still stops cleanly.
func TestKilledReaderAndBusyUnmount(t *testing.T) {
	archive := smallOVA(t, 32<<20)
	m := foreground(t, archive)
	// A reader killed in the middle of a read.
	reader := exec.Command("dd", "if="+filepath.Join(m.dir, "disk1.vmdk"), "of=/dev/null", "bs=4k")
	reader.Start()
	time.Sleep(50 * time.Millisecond)
	reader.Process.Kill()
	reader.Wait()
	// Reads still work afterwards.
	if b, err := os.ReadFile(filepath.Join(m.dir, "appliance.ovf")); err != nil || string(b) != "<Envelope/>" {
		t.Fatalf("after a killed reader: %q, %v", b, err)
	}
	// Unmount with a file open: busy; closing it lets the unmount through.
	f, _ := os.Open(filepath.Join(m.dir, "disk1.vmdk"))
	if err := exec.Command("fusermount3", "-u", m.dir).Run(); err == nil {
		t.Log("the kernel allowed the unmount with a file open")
	}
	f.Close()
	m.cmd.Process.Signal(syscall.SIGTERM)
	if code := m.exit(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, m.stderr)
	}
	if mounted(t, m.dir) {
		t.Error("a mount was left behind")
	}
}

// TestSIGTERMDuringVerification stops the daemon while it hashes a disk:
// it exits cleanly, and the cache folder holds no half-written file.
func TestSIGTERMDuringVerification(t *testing.T) {
	p := makeSignedPkg(t, false)
	cache := t.TempDir()
	testutil.RequireFUSE(t)
	mnt := t.TempDir()
	cmd := exec.Command(daemon(t), "-f", "--cache-dir", cache, p.ova, mnt)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.Start()
	if !waitFor(10*time.Second, func() bool { return mounted(t, mnt) }) {
		cmd.Process.Kill()
		t.Fatal("no mount")
	}
	f, _ := os.Open(filepath.Join(mnt, "disk1.vmdk")) // starts the verification
	f.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v\n%s", err, stderr.String())
	}
	if mounted(t, mnt) {
		t.Error("a mount was left behind")
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("a half-written cache file was left: %s", e.Name())
		}
	}
}

// TestFailingDiskReadsDoNotBlockOthers: while one raw view fails, parallel
// readers of another are unaffected.
func TestFailingDiskReadsDoNotBlockOthers(t *testing.T) {
	raw := testutil.PartitionedDisk(t, 16<<20, 6<<20)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.qcow2")
	testutil.QemuImg(t, "convert", "-c", "-O", "qcow2", raw, good)
	b, _ := os.ReadFile(good)
	bad := bytes.Clone(b)
	for i := len(bad) / 2; i < len(bad)/2+200000; i++ { // smash compressed clusters
		bad[i] = 0x5a
	}
	badPath := filepath.Join(dir, "bad.qcow2")
	os.WriteFile(badPath, bad, 0o644)
	m := mountArchive(t, packOVA(t, map[string]string{"good.qcow2": good, "bad.qcow2": badPath}))
	want, _ := os.ReadFile(raw)
	var wg sync.WaitGroup
	var badErrs, goodErrs int
	var mu sync.Mutex
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, isBad := "disks/good.qcow2.raw", false
			if g%2 == 1 {
				name, isBad = "disks/bad.qcow2.raw", true
			}
			f, err := os.Open(m.path(name))
			if err != nil {
				return
			}
			defer f.Close()
			got, err := io.ReadAll(f)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case isBad && err != nil:
				badErrs++
			case !isBad && (err != nil || !bytes.Equal(got, want)):
				goodErrs++
			}
		}()
	}
	wg.Wait()
	if goodErrs != 0 || badErrs == 0 {
		t.Errorf("good readers failed %d times; bad readers failed %d times (want 0 and > 0)", goodErrs, badErrs)
	}
}
