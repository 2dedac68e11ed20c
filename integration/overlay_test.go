package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// overlayFile is the content the overlay test writes into the guest's
// file i.
func overlayFile(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("guest file %d written through the overlay\n", i)), 1+i%40)
}

// TestOverlayGuestWrites runs a guest's filesystem on a writable
// partition view through a loop device, as a hypervisor would run the
// disk: the kernel's ext4 writes and deletes thousands of files, e2fsck
// finds the result clean, a remount over the same overlay folder finds
// every file, and the archive is never written.
func TestOverlayGuestWrites(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: losetup and the kernel's ext4 mount of the writable view")
	}
	e2fsck := testutil.RequireTool(t, "e2fsck")
	losetup := testutil.RequireTool(t, "losetup")
	dir := t.TempDir()
	g := testutil.BuildGuestDisk(t, dir, 20)
	ova := guestApplianceOVA(t, dir, g)
	sum := sha256File(t, ova)
	ovl := filepath.Join(dir, "overlay")

	m := mountArchive(t, ova, "--overlay", ovl)
	p1 := m.path("disks/disk1.vmdk.p1")
	attach := func(view string) (dev, mnt string) {
		out, err := exec.Command(losetup, "-f", "--show", view).CombinedOutput()
		if err != nil {
			t.Fatalf("losetup %s: %v\n%s", view, err, out)
		}
		dev = strings.TrimSpace(string(out))
		mnt = t.TempDir()
		if out, err := exec.Command("mount", "-t", "ext4", dev, mnt).CombinedOutput(); err != nil {
			exec.Command(losetup, "-d", dev).Run()
			t.Fatalf("mount %s: %v\n%s", dev, err, out)
		}
		return dev, mnt
	}
	detach := func(dev, mnt string) {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount %s: %v\n%s", mnt, err, out)
		}
		if out, err := exec.Command(losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Fatalf("losetup -d %s: %v\n%s", dev, err, out)
		}
	}
	const n = 3000
	dev, mnt := attach(p1)
	os.MkdirAll(filepath.Join(mnt, "new"), 0o755)
	for i := range n {
		if err := os.WriteFile(filepath.Join(mnt, "new", fmt.Sprint(i)), overlayFile(i), 0o644); err != nil {
			detach(dev, mnt)
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 3 {
		os.Remove(filepath.Join(mnt, "new", fmt.Sprint(i)))
	}
	// A large file deleted and fstrim run: ext4 discards its free blocks
	// through the loop device, which punches holes in the view, and the
	// overlay frees what it held.
	big := bytes.Repeat([]byte("a large file, deleted and trimmed "), 1<<19) // 17 MiB
	if err := os.WriteFile(filepath.Join(mnt, "big"), big, 0o644); err != nil {
		detach(dev, mnt)
		t.Fatal(err)
	}
	syscall.Sync()
	before := overlayWritten(t, ovl)
	os.Remove(filepath.Join(mnt, "big"))
	syscall.Sync()
	if out, err := exec.Command("fstrim", mnt).CombinedOutput(); err != nil {
		detach(dev, mnt)
		t.Fatalf("fstrim: %v\n%s", err, out)
	}
	syscall.Sync()
	if after := overlayWritten(t, ovl); after > before-int64(len(big))/2 {
		t.Errorf("the overlay holds %d bytes after the %d-byte file was deleted and trimmed, %d before", after, len(big), before)
	}
	detach(dev, mnt)
	if out, err := exec.Command(e2fsck, "-fn", p1).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn of the written partition: %v\n%s", err, out)
	}
	if st := xattr(t, p1, "user.ovfmount.verify"); st != "modified" {
		t.Errorf("user.ovfmount.verify of the written partition is %q, want modified", st)
	}
	// The logical volume on the second partition takes writes too: they
	// land where its extents lie on the disk.
	root := m.path("disks/disk1.vmdk.vg0-root")
	dev, mnt = attach(root)
	lvFile := bytes.Repeat([]byte("written into the logical volume\n"), 3000)
	if err := os.WriteFile(filepath.Join(mnt, "lv-file"), lvFile, 0o644); err != nil {
		detach(dev, mnt)
		t.Fatal(err)
	}
	syscall.Sync()
	detach(dev, mnt)
	if out, err := exec.Command(e2fsck, "-fn", root).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn of the written logical volume: %v\n%s", err, out)
	}
	m.unmount(t)

	m = mountArchive(t, ova, "--overlay", ovl)
	dev, mnt = attach(m.path("disks/disk1.vmdk.p1"))
	for i := range n {
		got, err := os.ReadFile(filepath.Join(mnt, "new", fmt.Sprint(i)))
		switch {
		case i%3 == 0 && !os.IsNotExist(err):
			t.Errorf("new/%d was deleted but is there after the remount (%v)", i, err)
		case i%3 != 0 && !bytes.Equal(got, overlayFile(i)):
			t.Errorf("new/%d after the remount: %d bytes (%v), want %d", i, len(got), err, len(overlayFile(i)))
		}
	}
	// The files the disk came with are still there.
	if got, err := os.ReadFile(filepath.Join(mnt, "special/plain.txt")); err != nil || len(got) == 0 {
		t.Errorf("special/plain.txt from the archive: %v", err)
	}
	detach(dev, mnt)
	dev, mnt = attach(m.path("disks/disk1.vmdk.vg0-root"))
	if got, err := os.ReadFile(filepath.Join(mnt, "lv-file")); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("written into the logical volume\n"), 3000)) {
		t.Errorf("the file written into the logical volume after the remount: %d bytes (%v)", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "etc/hostname")); err != nil {
		t.Errorf("the root volume's own files after the remount: %v", err)
	}
	detach(dev, mnt)
	m.unmount(t)
	if sha256File(t, ova) != sum {
		t.Fatal("the archive changed")
	}
}

// TestOverlaySurvivesKill: a write acknowledged by fsync is there after
// the daemon is killed with SIGKILL and the archive mounted again with the
// same overlay folder; the archive is untouched; a folder made for one
// archive is refused for another, saying which.
func TestOverlaySurvivesKill(t *testing.T) {
	dir := t.TempDir()
	ova := filepath.Join(dir, "app.ova")
	writeDiskOVA(t, ova, 8<<20)
	sum := sha256File(t, ova)
	ovl := filepath.Join(dir, "overlay")

	m := mountArchive(t, ova, "--overlay", ovl)
	view := m.path("disks/disk1.vmdk.raw")
	f, err := os.OpenFile(view, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	synced := bytes.Repeat([]byte("synced-before-kill "), 1000)
	if _, err := f.WriteAt(synced, 3<<20+123); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// A hole punched in a written range reads as zeros (the loop driver's
	// discards arrive this way).
	if _, err := f.WriteAt(bytes.Repeat([]byte{9}, 256<<10), 6<<20); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 6<<20+64<<10, 128<<10); err != nil {
		t.Fatalf("punching a hole in the view: %v", err)
	}
	f.Sync()
	f.Close()
	// A write to a file opened O_DIRECT is durable when write(2) returns,
	// with no fsync.
	d, err := os.OpenFile(view, os.O_RDWR|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	direct := alignedBlock(4096, 0x7e)
	if _, err := d.WriteAt(direct, 5<<20); err != nil {
		t.Fatalf("O_DIRECT write: %v", err)
	}
	pid := daemonOf(t, m.dir)
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	exec.Command("fusermount3", "-u", "-z", m.dir).Run()

	m2 := mountArchive(t, ova, "--overlay", ovl)
	got := make([]byte, len(synced))
	g, err := os.Open(m2.path("disks/disk1.vmdk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.ReadAt(got, 3<<20+123); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, synced) {
		t.Error("the write synced before the kill is not there after a remount")
	}
	got = make([]byte, 4096)
	g.ReadAt(got, 5<<20)
	if !bytes.Equal(got, direct) {
		t.Error("the O_DIRECT write is not there after the kill and a remount")
	}
	got = make([]byte, 256<<10)
	g.ReadAt(got, 6<<20)
	want := bytes.Repeat([]byte{9}, 256<<10)
	clear(want[64<<10 : 192<<10])
	if !bytes.Equal(got, want) {
		t.Error("the punched hole does not read as zeros amid the written bytes after a remount")
	}
	g.Close()
	d.Close()
	m2.unmount(t)
	if sha256File(t, ova) != sum {
		t.Fatal("the archive changed")
	}

	other := filepath.Join(dir, "other.ova")
	writeDiskOVA(t, other, 4<<20)
	code, out := runOvfmount(t, "--overlay", ovl, other, t.TempDir())
	if code != 2 || !strings.Contains(out, "app.ova") || !strings.Contains(out, "other.ova") {
		t.Errorf("mounting another archive over the overlay: exit %d, %q; want 2 naming both archives", code, out)
	}
	// The same archive, modified since (here only its time): refused too.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(ova, later, later); err != nil {
		t.Fatal(err)
	}
	code, out = runOvfmount(t, "--overlay", ovl, ova, t.TempDir())
	if code != 2 || !strings.Contains(out, "changed") {
		t.Errorf("mounting the archive after it changed: exit %d, %q; want 2 saying it changed", code, out)
	}
}

// daemonOf finds the process serving the mount at dir.
func daemonOf(t *testing.T, dir string) int {
	t.Helper()
	pid := findDaemon(dir)
	if pid == 0 {
		t.Fatalf("no ovfmount process serves %s", dir)
	}
	return pid
}

// findDaemon returns the pid of the ovfmount process whose arguments name
// dir, or 0.
func findDaemon(dir string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && filepath.Base(args[0]) == "ovfmount" && strings.Contains(string(b), "\x00"+dir+"\x00") {
			var pid int
			fmt.Sscanf(strings.Split(p, "/")[2], "%d", &pid)
			return pid
		}
	}
	return 0
}

// writeDiskOVA writes an OVA at path holding one streamOptimized VMDK of
// size bytes, half of it data.
func writeDiskOVA(t *testing.T, path string, size int64) {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	b := make([]byte, size)
	for i := int64(0); i < size/2; i++ {
		b[i] = byte(i*31 + i>>12)
	}
	if err := os.WriteFile(raw, b, 0o644); err != nil {
		t.Fatal(err)
	}
	vmdk := filepath.Join(dir, "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	vb, err := os.ReadFile(vmdk)
	if err != nil {
		t.Fatal(err)
	}
	disk := testpkg.File{Name: "disk1.vmdk", Data: vb}
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.vmdk")}
	testpkg.WriteOVA(t, path, desc, disk, testpkg.Manifest("SHA256", desc, disk).Named("app.mf"))
}

// alignedBlock is n bytes of b in a buffer aligned for O_DIRECT.
func alignedBlock(n int, b byte) []byte {
	buf := make([]byte, n+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&buf[0]))%4096)
	out := buf[off%4096 : off%4096+n]
	for i := range out {
		out[i] = b
	}
	return out
}

// overlayWritten is the bytes the overlay folder's disks hold, as
// `ovfmount overlay status --json` reports them.
func overlayWritten(t *testing.T, dir string) int64 {
	t.Helper()
	code, out := runOvfmount(t, "overlay", "status", "--json", dir)
	var st struct{ Disks []struct{ Written int64 } }
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("overlay status: exit %d (%v)\n%s", code, err, out)
	}
	var n int64
	for _, d := range st.Disks {
		n += d.Written
	}
	return n
}

// TestOverlayConcurrentWriters: eight writers write their own regions of
// a writable view at once, in 4 KiB to 200 KiB pieces at odd offsets,
// while readers read those regions over and over; each byte a reader sees
// is the disk's or one a writer wrote there, and at the end, and after a
// remount, the view equals a model of the writes.
func TestOverlayConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	ova := filepath.Join(dir, "app.ova")
	writeDiskOVA(t, ova, 16<<20)
	ovl := filepath.Join(dir, "overlay")
	m := mountArchive(t, ova, "--overlay", ovl)
	view := m.path("disks/disk1.vmdk.raw")
	model, err := os.ReadFile(view)
	if err != nil {
		t.Fatal(err)
	}
	const writers, region = 8, 2 << 20
	orig := append([]byte(nil), model...) // what readers may also see
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() { // the writer of region w
			defer wg.Done()
			f, err := os.OpenFile(view, os.O_RDWR, 0)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 60 {
				n := 4096 + rng.IntN(200<<10)
				off := int64(w*region) + rng.Int64N(region-int64(n))
				b := bytes.Repeat([]byte{byte(w*16 + i%16 + 1)}, n)
				if _, err := f.WriteAt(b, off); err != nil {
					errs <- err
					return
				}
				copy(model[off:], b) // only this writer touches its region
				if i%10 == 9 {
					f.Sync()
				}
			}
		}()
	}
	var rg sync.WaitGroup
	for r := range writers {
		rg.Add(1)
		go func() { // a reader of region r: old bytes, or a writer's
			defer rg.Done()
			f, err := os.Open(view)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			buf := make([]byte, region)
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := f.ReadAt(buf, int64(r*region)); err != nil {
					errs <- err
					return
				}
				for i, c := range buf {
					if c != orig[r*region+i] && (c-1)/16 != byte(r) {
						errs <- fmt.Errorf("region %d: byte %d is %#x, neither the disk's nor its writer's", r, i, c)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(when string, p string) {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, model) {
			t.Errorf("%s: the view differs from the model of the writes", when)
		}
	}
	check("after the writes", view)
	m.unmount(t)
	m = mountArchive(t, ova, "--overlay", ovl)
	check("after a remount", m.path("disks/disk1.vmdk.raw"))
}
