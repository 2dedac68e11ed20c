package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GuestDisk is a disk made the way an appliance's is, with the real tools:
// a GPT (sfdisk) whose first partition holds an ext4 filesystem and whose
// second is an LVM2 physical volume (pvcreate, vgcreate, lvcreate) of the
// group vg0, with the logical volumes root (ext4, a small Linux root) and
// swap (mkswap). Every offset comes from the tools' own reports.
type GuestDisk struct {
	Raw string // the raw disk image
	// Data and Root are the ext4 images written into partition 1 and
	// vg0/root: the oracle trees, mounted by the kernel.
	Data, Root string
	// DataTree and RootTree are the folders the filesystems were made
	// from (mkfs.ext4 -d).
	DataTree, RootTree string
	Table              SfdiskTable
	// RootOffset and SwapOffset are where the logical volumes' extents
	// start on the disk (each is one linear segment).
	RootOffset, SwapOffset int64
	RootSize, SwapSize     int64
	// Hostname and Kernel are what the root's /etc/hostname and /boot
	// name.
	Hostname, Kernel string
}

// SfdiskTable is `sfdisk --json`'s report of a partition table.
type SfdiskTable struct {
	Label      string `json:"label"`
	ID         string `json:"id"`
	SectorSize int64  `json:"sectorsize"`
	Partitions []struct {
		Node  string `json:"node"`
		Start int64  `json:"start"`
		Size  int64  `json:"size"`
		Type  string `json:"type"`
		UUID  string `json:"uuid"`
		Name  string `json:"name"`
	} `json:"partitions"`
}

// Sfdisk reads a disk image's partition table with sfdisk --json.
func Sfdisk(t testing.TB, img string) SfdiskTable {
	t.Helper()
	out, err := exec.Command(RequireTool(t, "sfdisk"), "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", img, err)
	}
	var v struct {
		PT SfdiskTable `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	return v.PT
}

// Run runs a command, failing the test with its output if it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// BuildGuestDisk makes a GuestDisk in dir. It needs root (LVM's tools
// write through a loop device); the data tree holds files copied from
// /usr/share/doc (up to files of them) plus what filesystems must keep:
// symlinks short and long, hard links, a sparse file, a FIFO, a device
// node, long and non-ASCII names, set-id bits, owners above 65535,
// nanosecond times and extended attributes.
func BuildGuestDisk(t testing.TB, dir string, files int) *GuestDisk {
	t.Helper()
	for _, tool := range []string{"sfdisk", "mkfs.ext4", "pvcreate", "vgcreate", "lvcreate", "lvs", "losetup", "setfattr", "mkswap"} {
		RequireTool(t, tool)
	}
	if os.Geteuid() != 0 {
		msg := "building an LVM volume group needs root (a loop device)"
		if os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	g := &GuestDisk{Raw: filepath.Join(dir, "disk.raw"), Data: filepath.Join(dir, "data.ext4"), Root: filepath.Join(dir, "root.ext4"),
		DataTree: filepath.Join(dir, "data"), RootTree: filepath.Join(dir, "root"), Hostname: "appliance-under-test", Kernel: "6.1.0-27-amd64"}
	dataTree(t, g.DataTree, files)
	rootTree(t, g.RootTree, g.Hostname, g.Kernel)
	Run(t, "mkfs.ext4", "-q", "-F", "-d", g.DataTree, "-L", "data", g.Data, "48M")
	Run(t, "mkfs.ext4", "-q", "-F", "-d", g.RootTree, "-L", "root", g.Root, "36M")

	const mib = 1 << 20
	if err := os.WriteFile(g.Raw, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(g.Raw, 128*mib); err != nil {
		t.Fatal(err)
	}
	script := "label: gpt\n" +
		"start=2048, size=98304, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"data\"\n" +
		"start=100352, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=\"lvm\"\n"
	cmd := exec.Command("sfdisk", "-q", g.Raw)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	g.Table = Sfdisk(t, g.Raw)
	p1, p2 := g.Table.Partitions[0], g.Table.Partitions[1]
	writeAt(t, g.Raw, g.Data, p1.Start*512)

	// LVM on partition 2, through a loop device over it, with a private
	// configuration: activation off, so no device-mapper device is made.
	etc := filepath.Join(dir, "lvm")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(filepath.Join(etc, "lvm.conf"), []byte(
		"devices { obtain_device_list_from_udev = 0 }\nactivation { udev_sync = 0 udev_rules = 0 }\nglobal { use_lvmlockd = 0 }\n"), 0o644)
	t.Setenv("LVM_SYSTEM_DIR", etc)
	loop := strings.TrimSpace(Run(t, "losetup", "-f", "--show", "-o", strconv.FormatInt(p2.Start*512, 10),
		"--sizelimit", strconv.FormatInt(p2.Size*512, 10), g.Raw))
	defer exec.Command("losetup", "-d", loop).Run()
	lvm := func(args ...string) string {
		return Run(t, args[0], append([]string{"--devices", loop}, args[1:]...)...)
	}
	lvm("pvcreate", "-q", loop)
	lvm("vgcreate", "-q", "vg0", loop)
	lvm("lvcreate", "-q", "--driverloaded", "n", "-an", "-Zn", "-L", "36M", "-n", "root", "vg0")
	lvm("lvcreate", "-q", "--driverloaded", "n", "-an", "-Zn", "-L", "8M", "-n", "swap", "vg0")
	var segs struct {
		Report []struct {
			Seg []struct {
				LV     string `json:"lv_name"`
				Ranges string `json:"seg_pe_ranges"`
			} `json:"seg"`
		} `json:"report"`
	}
	jsonOf(t, lvm("lvs", "--segments", "-o", "lv_name,seg_pe_ranges", "--reportformat", "json"), &segs)
	var pvs struct {
		Report []struct {
			PV []struct {
				PEStart string `json:"pe_start"`
				Extent  string `json:"vg_extent_size"`
			} `json:"pv"`
		} `json:"report"`
	}
	jsonOf(t, lvm("pvs", "-o", "pe_start,vg_extent_size", "--units", "b", "--nosuffix", "--reportformat", "json"), &pvs)
	peStart, _ := strconv.ParseInt(pvs.Report[0].PV[0].PEStart, 10, 64)
	extent, _ := strconv.ParseInt(pvs.Report[0].PV[0].Extent, 10, 64)
	if extent == 0 || len(segs.Report) == 0 {
		t.Fatalf("lvs/pvs reported no extents: %+v %+v", segs, pvs)
	}
	for _, s := range segs.Report[0].Seg {
		// "/dev/loopN:10-11": one linear segment, extents 10 to 11.
		var first, last int64
		if _, err := fmt.Sscanf(s.Ranges[strings.LastIndexByte(s.Ranges, ':')+1:], "%d-%d", &first, &last); err != nil {
			t.Fatalf("seg_pe_ranges %q: %v", s.Ranges, err)
		}
		off, size := p2.Start*512+peStart+first*extent, (last-first+1)*extent
		switch s.LV {
		case "root":
			g.RootOffset, g.RootSize = off, size
		case "swap":
			g.SwapOffset, g.SwapSize = off, size
		}
	}
	writeAt(t, g.Raw, g.Root, g.RootOffset)
	swap := filepath.Join(dir, "swap.img")
	os.WriteFile(swap, nil, 0o644)
	os.Truncate(swap, g.SwapSize)
	Run(t, "mkswap", "-q", swap)
	writeAt(t, g.Raw, swap, g.SwapOffset)
	return g
}

func jsonOf(t testing.TB, out string, v any) {
	t.Helper()
	if i := strings.IndexByte(out, '{'); i >= 0 {
		out = out[i:]
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// writeAt copies file src into dst at off, keeping dst's length.
func writeAt(t testing.TB, dst, src string, off int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// dataTree fills dir with real files and the cases filesystems must keep.
func dataTree(t testing.TB, dir string, files int) {
	t.Helper()
	docs := filepath.Join(dir, "doc")
	os.MkdirAll(docs, 0o755)
	n := 0
	filepath.WalkDir("/usr/share/doc", func(p string, d os.DirEntry, err error) error {
		if err != nil || n >= files || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel("/usr/share/doc", p)
		dst := filepath.Join(docs, rel)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if b, err := os.ReadFile(p); err == nil && os.WriteFile(dst, b, 0o644) == nil {
			n++
		}
		return nil
	})
	special := filepath.Join(dir, "special")
	os.MkdirAll(special, 0o755)
	w := func(name, data string) {
		if err := os.WriteFile(filepath.Join(special, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("plain.txt", "a plain file\n")
	w("grüße-ñandú-日本語.txt", "non-ASCII name\n")
	w(strings.Repeat("L", 255), "a 255-byte name\n")
	os.Symlink("plain.txt", filepath.Join(special, "short-link"))
	os.Symlink(strings.Repeat("../", 30)+"etc/far/away/target", filepath.Join(special, "long-link"))
	os.Symlink("/absolute/elsewhere", filepath.Join(special, "absolute-link"))
	os.Link(filepath.Join(special, "plain.txt"), filepath.Join(special, "hard-link"))
	sparse := filepath.Join(special, "sparse.bin")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("start"), 0)
	f.WriteAt([]byte("middle"), 5<<20)
	f.Truncate(9 << 20)
	f.Close()
	Run(t, "mkfifo", filepath.Join(special, "fifo"))
	Run(t, "mknod", filepath.Join(special, "char-dev"), "c", "4", "64")
	Run(t, "mknod", filepath.Join(special, "block-dev"), "b", "8", "1")
	w("setuid", "#!/bin/sh\n")
	os.Chmod(filepath.Join(special, "setuid"), 0o4755)
	os.Chmod(special, 0o1777)
	w("owned", "owned by a high uid\n")
	os.Lchown(filepath.Join(special, "owned"), 100000, 100001)
	Run(t, "setfattr", "-n", "user.comment", "-v", "checked to the byte", filepath.Join(special, "plain.txt"))
	ns := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	os.Chtimes(filepath.Join(special, "plain.txt"), ns, ns)
}

// rootTree is a small Linux root: os-release as Debian links it, a
// hostname, a kernel, a shell, an fstab.
func rootTree(t testing.TB, dir, hostname, kernel string) {
	t.Helper()
	for _, d := range []string{"etc", "usr/lib", "boot", "lib/modules/" + kernel, "bin", "var/lib/dpkg"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	osr, err := os.ReadFile("/usr/lib/os-release")
	if err != nil {
		if osr, err = os.ReadFile("/etc/os-release"); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "usr/lib/os-release"), osr, 0o644)
	os.Symlink("../usr/lib/os-release", filepath.Join(dir, "etc/os-release"))
	os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte(hostname+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/fstab"), []byte("LABEL=root / ext4 defaults 0 1\nLABEL=data /srv ext4 defaults 0 2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "boot/vmlinuz-"+kernel), []byte("not really a kernel"), 0o644)
	os.WriteFile(filepath.Join(dir, "var/lib/dpkg/status"), []byte("Package: base-files\nStatus: install ok installed\n"), 0o644)
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "bin/sh"), sh, 0o755)
}
