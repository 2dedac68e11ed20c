package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// guestApplianceOVA packs a guest disk (a GPT with an ext4 partition and
// an LVM volume group) as a streamOptimized VMDK in an OVA with a
// manifest.
func guestApplianceOVA(t *testing.T, dir string, g *testutil.GuestDisk) string {
	vmdk := filepath.Join(dir, "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", g.Raw, vmdk)
	vb, err := os.ReadFile(vmdk)
	if err != nil {
		t.Fatal(err)
	}
	disk := testpkg.File{Name: "disk1.vmdk", Data: vb}
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.vmdk")}
	ova := filepath.Join(dir, "app.ova")
	testpkg.WriteOVA(t, ova, desc, disk, testpkg.Manifest("SHA256", desc, disk).Named("app.mf"))
	return ova
}

// startServe runs `ovfmount serve --nbd unix:SOCK ARCHIVE` and returns the
// socket once nbdinfo gets an answer there; the server is stopped with
// SIGTERM at the test's end, where its exit is checked.
func startServe(t *testing.T, archive string, extra ...string) (sock string, stop func() (int, string)) {
	nbdinfo := testutil.RequireTool(t, "nbdinfo")
	sock = filepath.Join(t.TempDir(), "app.sock")
	var logs bytes.Buffer
	cmd := exec.Command(daemon(t), append(append([]string{"serve", "--nbd", "unix:" + sock, "--log-format", "json"}, extra...), archive)...)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop = func() (int, string) {
		if stopped {
			return 0, logs.String()
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), logs.String()
			}
			return 0, logs.String()
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("serve did not stop within 30 s of SIGTERM; its log:\n%s", logs.String())
		}
		return -1, ""
	}
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(60 * time.Second); ; {
		if err := exec.Command(nbdinfo, "--list", "nbd+unix:///?socket="+sock).Run(); err == nil {
			return sock, stop
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited before serving (%v); its log:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer on %s within 60 s; its log:\n%s", sock, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeNBD serves an appliance's disk over NBD and reads every export
// with libnbd's and qemu's clients: the list is the mount's disks folder,
// each export's bytes are the disk's (whole, at the partition's offset,
// at the logical volume's extent), and the allocation map agrees with
// qemu-img map of the VMDK.
func TestServeNBD(t *testing.T) {
	nbdinfo, nbdcopy := testutil.RequireTool(t, "nbdinfo"), testutil.RequireTool(t, "nbdcopy")
	dir := t.TempDir()
	g := testutil.BuildGuestDisk(t, dir, 20)
	ova := guestApplianceOVA(t, dir, g)
	sock, stop := startServe(t, ova)
	uri := func(name string) string { return "nbd+unix:///" + name + "?socket=" + sock }

	out, err := exec.Command(nbdinfo, "--list", "--json", uri("")).Output()
	if err != nil {
		t.Fatalf("nbdinfo --list: %v", err)
	}
	var list struct {
		Exports []struct {
			Name     string `json:"export-name"`
			Size     int64  `json:"export-size"`
			ReadOnly bool   `json:"is_read_only"`
		} `json:"exports"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("nbdinfo --list --json: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(g.Raw)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := g.Table.Partitions[0], g.Table.Partitions[1]
	want := map[string][]byte{
		"disk1.vmdk.raw":      raw,
		"disk1.vmdk.p1":       raw[p1.Start*512 : (p1.Start+p1.Size)*512],
		"disk1.vmdk.p2":       raw[p2.Start*512 : (p2.Start+p2.Size)*512],
		"disk1.vmdk.vg0-root": raw[g.RootOffset : g.RootOffset+g.RootSize],
		"disk1.vmdk.vg0-swap": raw[g.SwapOffset : g.SwapOffset+g.SwapSize],
	}
	var names []string
	for _, e := range list.Exports {
		names = append(names, e.Name)
		if w, ok := want[e.Name]; ok && (e.Size != int64(len(w)) || !e.ReadOnly) {
			t.Errorf("%s: %d bytes, read-only %v; want %d, read-only", e.Name, e.Size, e.ReadOnly, len(w))
		}
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "disk1.vmdk.p1 disk1.vmdk.p2 disk1.vmdk.raw disk1.vmdk.vg0-root disk1.vmdk.vg0-swap" {
		t.Fatalf("exports %q, want the disks folder's files", got)
	}
	for name, w := range want {
		dst := filepath.Join(dir, name+".copy")
		if out, err := exec.Command(nbdcopy, uri(name), dst).CombinedOutput(); err != nil {
			t.Fatalf("nbdcopy %s: %v\n%s", name, err, out)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, w) {
			t.Errorf("%s: nbdcopy's %d bytes differ from the disk's %d", name, len(got), len(w))
		}
		os.Remove(dst)
	}
	conv := filepath.Join(dir, "convert.raw")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "raw", uri("disk1.vmdk.raw"), conv)
	if got, _ := os.ReadFile(conv); !bytes.Equal(got, raw) {
		t.Error("qemu-img convert from NBD differs from the disk")
	}

	// Allocation: the ranges NBD calls data are those qemu-img map says
	// the VMDK allocates.
	out, err = exec.Command(nbdinfo, "--map", "--json", uri("disk1.vmdk.raw")).Output()
	if err != nil {
		t.Fatalf("nbdinfo --map: %v", err)
	}
	var nbdMap []struct {
		Offset, Length int64
		Type           int
	}
	if err := json.Unmarshal(out, &nbdMap); err != nil {
		t.Fatalf("nbdinfo --map --json: %v\n%s", err, out)
	}
	out, err = exec.Command(testutil.RequireTool(t, "qemu-img"), "map", "--output=json", filepath.Join(dir, "disk1.vmdk")).Output()
	if err != nil {
		t.Fatalf("qemu-img map: %v", err)
	}
	var qMap []struct {
		Start, Length int64
		Data          bool
	}
	if err := json.Unmarshal(out, &qMap); err != nil {
		t.Fatal(err)
	}
	type span struct{ off, end int64 }
	merge := func(spans []span) []span {
		var out []span
		for _, s := range spans {
			if n := len(out); n > 0 && out[n-1].end == s.off {
				out[n-1].end = s.end
			} else if s.end > s.off {
				out = append(out, s)
			}
		}
		return out
	}
	var fromNBD, fromQemu []span
	for _, e := range nbdMap {
		if e.Type&1 == 0 { // not a hole
			fromNBD = append(fromNBD, span{e.Offset, e.Offset + e.Length})
		}
	}
	for _, e := range qMap {
		if e.Data {
			fromQemu = append(fromQemu, span{e.Start, e.Start + e.Length})
		}
	}
	if a, b := merge(fromNBD), merge(fromQemu); len(a) == 0 || !slices.Equal(a, b) {
		t.Errorf("data ranges: NBD %v, qemu-img map %v", a, b)
	}

	code, logs := stop()
	if code != 0 {
		t.Errorf("serve exited with %d after SIGTERM; its log:\n%s", code, logs)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket is left behind after serve stopped (%v)", err)
	}
}

// TestServeNBDRefusesOpenTCP: plain NBD on an address other hosts can
// reach is refused, with exit code 13 and what to do instead; loopback is
// served.
func TestServeNBDRefusesOpenTCP(t *testing.T) {
	ova := filepath.Join(t.TempDir(), "app.ova")
	disk := testpkg.File{Name: "disk1.img", Data: bytes.Repeat([]byte{7}, 1<<20)}
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.img")}
	testpkg.WriteOVA(t, ova, desc, disk)
	code, out := runOvfmount(t, "serve", "--nbd", "tcp:0.0.0.0:0", ova)
	if code != 13 || !strings.Contains(out, "--insecure") || !strings.Contains(out, "TLS") {
		t.Errorf("serve on 0.0.0.0 without TLS: exit %d, %q; want 13 naming TLS and --insecure", code, out)
	}
	code, out = runOvfmount(t, "serve", ova)
	if code != 2 || !strings.Contains(out, "--nbd") {
		t.Errorf("serve without --nbd: exit %d, %q; want 2 naming --nbd", code, out)
	}
}

// TestServeNBDOverlay: with --overlay, qemu-io writes, zeroes and discards
// over NBD are read back over NBD, and through the FUSE view of a mount
// over the same overlay folder afterwards; the archive is untouched.
func TestServeNBDOverlay(t *testing.T) {
	qemuIO := testutil.RequireTool(t, "qemu-io")
	dir := t.TempDir()
	ova := filepath.Join(dir, "app.ova")
	writeDiskOVA(t, ova, 8<<20)
	sum := sha256File(t, ova)
	ovl := filepath.Join(dir, "overlay")
	sock, stop := startServe(t, ova, "--overlay", ovl)
	uri := "nbd+unix:///disk1.vmdk.raw?socket=" + sock
	qio := func(args ...string) string {
		out, err := exec.Command(qemuIO, append([]string{"-f", "raw"}, append(args, uri)...)...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "failed") {
			t.Fatalf("qemu-io %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	qio("-c", "write -P 0xab 4096 1M", "-c", "write -z 6M 64k", "-c", "discard 7M 128k", "-c", "flush")
	qio("-c", "read -P 0xab 4096 1M", "-c", "read -P 0 6M 64k", "-c", "read -P 0 7M 128k")
	if code, logs := stop(); code != 0 {
		t.Fatalf("serve exited with %d; its log:\n%s", code, logs)
	}

	m := mountArchive(t, ova, "--overlay", ovl)
	b, err := os.ReadFile(m.path("disks/disk1.vmdk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[4096:4096+1<<20], bytes.Repeat([]byte{0xab}, 1<<20)) || !bytes.Equal(b[6<<20 : 7<<20+128<<10][:64<<10], make([]byte, 64<<10)) ||
		!bytes.Equal(b[7<<20:7<<20+128<<10], make([]byte, 128<<10)) {
		t.Error("the FUSE view over the overlay does not show what qemu-io wrote over NBD")
	}
	after := int64(4096 + 1<<20) // the first byte past the write: the disk's own
	if b[after] != byte(after*31+after>>12) {
		t.Error("bytes qemu-io did not write changed")
	}
	m.unmount(t)

	// status reads the folder; export writes the disk as qemu-io left it,
	// in both formats, equal to the view (qemu-img compare, check).
	code, out := runOvfmount(t, "overlay", "status", "--json", ovl)
	var st struct {
		Archive string
		Disks   []struct {
			Name    string
			Size    int64
			Written int64
		}
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("overlay status --json: exit %d (%v)\n%s", code, err, out)
	}
	if len(st.Disks) != 1 || st.Disks[0].Name != "disk1.vmdk.raw" || st.Disks[0].Size != 8<<20 || st.Disks[0].Written < 1<<20 || !strings.Contains(st.Archive, "app.ova") {
		t.Errorf("overlay status: %+v", st)
	}
	view := filepath.Join(dir, "view.raw")
	os.WriteFile(view, b, 0o644)
	for _, name := range []string{"out.qcow2", "out.raw"} {
		dst := filepath.Join(dir, name)
		if code, out := runOvfmount(t, "overlay", "export", ovl, "disk1.vmdk", dst); code != 0 {
			t.Fatalf("overlay export %s: exit %d\n%s", name, code, out)
		}
		format := strings.TrimPrefix(filepath.Ext(name), ".")
		testutil.QemuImg(t, "compare", "-f", format, "-F", "raw", dst, view)
		if format == "qcow2" {
			testutil.QemuImg(t, "check", dst)
		}
	}
	if sha256File(t, ova) != sum {
		t.Fatal("the archive changed")
	}
}
