package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs/guestfstest"
	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestInsideTheDisks mounts an appliance whose streamOptimized VMDK holds
// a GPT with an ext4 partition and an LVM volume group, plus a cloud-init
// seed ISO, and compares what the mount shows inside them with what the
// real tools say: sfdisk's offsets, lvs's extents, the kernel's own
// read-only mounts of the same filesystems, xorriso's extraction.
func TestInsideTheDisks(t *testing.T) {
	testutil.RequireFUSE(t)
	dir := t.TempDir()
	g := testutil.BuildGuestDisk(t, dir, 400)
	vmdk := filepath.Join(dir, "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", g.Raw, vmdk)
	seed := filepath.Join(dir, "seed")
	os.MkdirAll(seed, 0o755)
	os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\nhostname: seeded\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: i-1\n"), 0o644)
	iso := filepath.Join(dir, "seed.iso")
	testutil.Run(t, testutil.RequireTool(t, "xorriso"), "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "cidata", "-o", iso, seed)

	vb, _ := os.ReadFile(vmdk)
	ib, _ := os.ReadFile(iso)
	files := []testpkg.File{{Name: "disk1.vmdk", Data: vb}, {Name: "seed.iso", Data: ib}}
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.vmdk", "seed.iso")}
	ova := filepath.Join(dir, "app.ova")
	testpkg.WriteOVA(t, ova, append([]testpkg.File{desc}, append(files, testpkg.Manifest("SHA256", append([]testpkg.File{desc}, files...)...).Named("app.mf"))...)...)

	m := mountArchive(t, ova)
	names := func(p string) []string {
		ents, err := os.ReadDir(m.path(p))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got, want := strings.Join(names("disks"), " "), "disk1.vmdk.p1 disk1.vmdk.p2 disk1.vmdk.raw disk1.vmdk.vg0-root disk1.vmdk.vg0-swap"; got != want {
		t.Fatalf("disks/ holds %q, want %q", got, want)
	}
	if got, want := strings.Join(names("files"), " "), "disk1.vmdk.p1 disk1.vmdk.vg0-root seed.iso"; got != want {
		t.Fatalf("files/ holds %q, want %q", got, want)
	}
	if !strings.Contains(readFile(m.logFile), "disks read: partitions, volumes and filesystems found") {
		t.Errorf("the mount's log does not say what it found in the disks:\n%s", readFile(m.logFile))
	}

	t.Run("block views", func(t *testing.T) {
		raw, err := os.ReadFile(g.Raw)
		if err != nil {
			t.Fatal(err)
		}
		check := func(view string, off, size int64) {
			got, err := os.ReadFile(m.path("disks/" + view))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(got)) != size || !bytes.Equal(got, raw[off:off+size]) {
				t.Errorf("%s: %d bytes, want %d at %d of the disk (first difference at %d)", view, len(got), size, off, firstDiff(got, raw[off:off+size]))
			}
		}
		for i, p := range g.Table.Partitions {
			check("disk1.vmdk.p"+string(rune('1'+i)), p.Start*512, p.Size*512)
		}
		check("disk1.vmdk.vg0-root", g.RootOffset, g.RootSize)
		check("disk1.vmdk.vg0-swap", g.SwapOffset, g.SwapSize)
		// sleuthkit reads the partition view as a filesystem, no offsets.
		out, err := exec.Command(testutil.RequireTool(t, "fls"), "-r", "-p", m.path("disks/disk1.vmdk.p1")).Output()
		if err != nil || !strings.Contains(string(out), "special/plain.txt") {
			t.Errorf("fls -r on the partition view: %v\n%.500s", err, out)
		}
	})

	t.Run("guest files", func(t *testing.T) {
		for _, c := range []struct{ view, image string }{{"disk1.vmdk.p1", g.Data}, {"disk1.vmdk.vg0-root", g.Root}} {
			kernel := testutil.KernelMount(t, c.image, "ext4", "noload")
			want := guestfstest.Tree(t, kernel)
			got := guestfstest.Tree(t, m.path("files/"+c.view))
			guestfstest.Equal(t, got, want, guestfstest.Compare{Owner: true, Perm: true, Nlink: true, Times: time.Nanosecond})
			sameLinks(t, c.view, got, want)
			for p, w := range want {
				for k, v := range w.Xattrs {
					if g := got[p]; g == nil || g.Xattrs["user.guest."+k] != v {
						t.Errorf("%s/%s: xattr user.guest.%s missing or not %q", c.view, p, k, v)
					}
				}
				// Linux allows user.* attributes on files and folders only.
				typ := w.Attr.Mode & syscall.S_IFMT
				if st := got[p].Xattrs["user.ovfmount.verify"]; st == "" && (typ == syscall.S_IFREG || typ == syscall.S_IFDIR) {
					t.Errorf("%s/%s: no user.ovfmount.verify", c.view, p)
				}
			}
		}
		// A guest's symlinks resolve inside the guest, by the kernel.
		osr, err := os.ReadFile(m.path("files/disk1.vmdk.vg0-root/etc/os-release"))
		host, _ := os.ReadFile(filepath.Join(g.RootTree, "usr/lib/os-release"))
		if err != nil || !bytes.Equal(osr, host) {
			t.Errorf("etc/os-release through the guest's symlink: %v", err)
		}
	})

	t.Run("seed ISO", func(t *testing.T) {
		out := t.TempDir()
		testutil.Run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", out)
		guestfstest.Equal(t, guestfstest.Tree(t, m.path("files/seed.iso")), guestfstest.Tree(t, out), guestfstest.Compare{})
	})

	t.Run("verification state", func(t *testing.T) {
		// Every partition, volume and guest file shows the disk's state.
		state := func(p string) string {
			buf := make([]byte, 64)
			n, err := unix.Lgetxattr(m.path(p), "user.ovfmount.verify", buf)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			return string(buf[:n])
		}
		os.ReadFile(m.path("disks/disk1.vmdk.raw"))
		if !waitFor(30*time.Second, func() bool { return state("disks/disk1.vmdk.raw") == "verified" }) {
			t.Fatalf("the raw view, read whole, is %q", state("disks/disk1.vmdk.raw"))
		}
		want := "verified"
		for _, p := range []string{"disks/disk1.vmdk.p1", "disks/disk1.vmdk.vg0-root", "files/disk1.vmdk.p1/special/plain.txt", "files/disk1.vmdk.vg0-root/etc/hostname"} {
			if got := state(p); got != want {
				t.Errorf("%s: %q, the disk's is %q", p, got, want)
			}
		}
	})

	t.Run("info", func(t *testing.T) {
		code, out := runOvfmount(t, "info", "--json", ova)
		if code != 0 {
			t.Fatalf("info exited %d: %s", code, out)
		}
		var r struct {
			Volumes []struct {
				Name       string `json:"name"`
				Kind       string `json:"kind"`
				Start      int64  `json:"start"`
				Size       int64  `json:"size"`
				Filesystem *struct {
					Type, Label, UUID string
				} `json:"filesystem"`
			} `json:"volumes"`
			OS []struct {
				Volume   string `json:"volume"`
				Distro   string `json:"distro"`
				Version  string `json:"version"`
				Hostname string `json:"hostname"`
				Kernels  []struct {
					Version string `json:"version"`
				} `json:"kernels"`
			} `json:"operatingSystems"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		got := map[string]string{}
		for _, v := range r.Volumes {
			fs := ""
			if v.Filesystem != nil {
				fs = v.Filesystem.Type + " " + v.Filesystem.Label + " " + v.Filesystem.UUID
			}
			got[v.Name] = v.Kind + " " + fs
		}
		blkid := func(img string) string {
			o, err := exec.Command("blkid", "-o", "value", "-s", "TYPE", "-s", "LABEL", "-s", "UUID", img).Output()
			if err != nil {
				t.Fatalf("blkid %s: %v", img, err)
			}
			f := strings.Fields(string(o)) // UUID, TYPE... in blkid's order: LABEL UUID TYPE
			sort.Strings(f)
			return strings.Join(f, " ")
		}
		for name, img := range map[string]string{"disk1.vmdk.p1": g.Data, "disk1.vmdk.vg0-root": g.Root} {
			f := strings.Fields(got[name])
			if len(f) != 4 {
				t.Errorf("info: volume %s is %q", name, got[name])
				continue
			}
			sorted := f[1:]
			sort.Strings(sorted)
			if strings.Join(sorted, " ") != blkid(img) {
				t.Errorf("info: volume %s has filesystem %q, blkid says %q", name, got[name], blkid(img))
			}
		}
		hostOS := map[string]string{}
		b, _ := os.ReadFile(filepath.Join(g.RootTree, "usr/lib/os-release"))
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				hostOS[k] = strings.Trim(v, `"`)
			}
		}
		if len(r.OS) != 1 || r.OS[0].Volume != "disk1.vmdk.vg0-root" || r.OS[0].Distro != hostOS["ID"] ||
			r.OS[0].Version != hostOS["VERSION_ID"] || r.OS[0].Hostname != g.Hostname ||
			len(r.OS[0].Kernels) != 1 || r.OS[0].Kernels[0].Version != g.Kernel {
			t.Errorf("info: operating systems %+v; want %s %s on disk1.vmdk.vg0-root named %s", r.OS, hostOS["ID"], hostOS["VERSION_ID"], g.Hostname)
		}
	})
}

// sameLinks checks that the paths the kernel shows as one inode (hard
// links) are one inode in the mount too, and no others.
func sameLinks(t *testing.T, view string, got, want map[string]*guestfstest.Node) {
	t.Helper()
	group := func(tree map[string]*guestfstest.Node) map[string]string {
		byIno := map[uint64][]string{}
		for p, n := range tree {
			byIno[n.Attr.Ino] = append(byIno[n.Attr.Ino], p)
		}
		out := map[string]string{}
		for _, ps := range byIno {
			sort.Strings(ps)
			for _, p := range ps {
				out[p] = strings.Join(ps, "|")
			}
		}
		return out
	}
	g, w := group(got), group(want)
	for p, links := range w {
		if g[p] != links {
			t.Errorf("%s/%s: shares its inode with %q, want %q", view, p, g[p], links)
		}
	}
}
