package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// debianTree lays out a merged-/usr guest as Debian does, from the host's
// own files: os-release under /usr/lib with the relative link in /etc,
// the shell as a link to dash, the dpkg database, apt.
func debianTree(t *testing.T) *tree {
	g := newTree(t)
	g.copyHost("/etc/os-release", "usr/lib/os-release")
	g.link("../usr/lib/os-release", "etc/os-release")
	g.copyHost("/etc/debian_version", "etc/debian_version")
	g.copyHost("/etc/hostname", "etc/hostname")
	g.copyHost("/usr/bin/dash", "usr/bin/dash")
	g.copyHost("/usr/bin/ls", "usr/bin/ls")
	g.link("dash", "usr/bin/sh")
	g.link("usr/bin", "bin")
	g.link("usr/lib", "lib")
	g.copyHost("/var/lib/dpkg/status", "var/lib/dpkg/status")
	g.copyHost("/usr/bin/apt-get", "usr/bin/apt-get")
	g.copyHost("/etc/debian_version", "boot/vmlinuz-6.1.0-test")
	g.mkdir("usr/lib/modules/6.1.0-test/kernel")
	g.mkdir("usr/lib/modules/5.10.0-old")
	g.write("usr/lib/modules/not-a-dir", []byte("x"))
	return g
}

const bootUUID, rootUUID = "3f6e1c1a-5c1e-4bb3-9b35-0c3f5a2e9d11", "9d5b4c7e-2a9a-4f40-8d2f-1b7f7f0c4e22"

func TestLinuxFromHostFiles(t *testing.T) {
	g := debianTree(t)
	fstab := fmt.Sprintf("# /etc/fstab: static file system information.\n"+
		"UUID=%s / ext4 errors=remount-ro 0 1\n"+
		"UUID=%s /boot ext2 defaults 0 2\n"+
		"LABEL=data\\040disk /srv/data\\040dir xfs noatime,nofail 0 2\n"+
		"/dev/mapper/vg0-var /var xfs defaults 0 2\n"+
		"/dev/sda3 none swap sw 0 0\n"+
		"tmpfs /tmp tmpfs\n", rootUUID, strings.ToUpper(bootUUID))
	g.write("etc/fstab", []byte(fstab))

	// /boot is a volume of its own, with a kernel the root does not hold.
	boot := newTree(t)
	boot.copyHost("/etc/debian_version", "vmlinuz-6.5.0-boot")
	data := newTree(t)
	data.mkdir("www")

	vols := []Volume{boot.volume("disk1.p1", bootUUID, ""), g.volume("disk1.p2", rootUUID, ""), data.volume("disk2", "", "data disk")}
	oses := Inspect(vols)
	if len(oses) != 1 {
		t.Fatalf("found %d systems, want the one root: %+v", len(oses), oses)
	}
	o := oses[0]

	want := shellRelease(t, "/etc/os-release", "ID", "VERSION_ID", "PRETTY_NAME")
	if o.Volume != "disk1.p2" || o.Type != "linux" || o.Distro != want["ID"] || o.Version != want["VERSION_ID"] || o.Name != want["PRETTY_NAME"] {
		t.Errorf("got %q %q %q %q %q; the host's sh says ID=%q VERSION_ID=%q PRETTY_NAME=%q",
			o.Volume, o.Type, o.Distro, o.Version, o.Name, want["ID"], want["VERSION_ID"], want["PRETTY_NAME"])
	}
	if h := hostLine(t, "/etc/hostname"); o.Hostname != h {
		t.Errorf("hostname %q, the file says %q", o.Hostname, h)
	}
	if a := hostUname(t); o.Arch != a {
		t.Errorf("arch %q, uname -m says %q", o.Arch, a)
	}
	if o.PackageFormat != "deb" || o.PackageManager != "apt" {
		t.Errorf("packages %q/%q, want deb/apt", o.PackageFormat, o.PackageManager)
	}
	wantKernels := []Kernel{
		{Version: "5.10.0-old", Modules: true},
		{Version: "6.1.0-test", Image: "/boot/vmlinuz-6.1.0-test", Modules: true},
		{Version: "6.5.0-boot", Image: "/boot/vmlinuz-6.5.0-boot"},
	}
	if !reflect.DeepEqual(o.Kernels, wantKernels) {
		t.Errorf("kernels %+v\nwant %+v", o.Kernels, wantKernels)
	}

	// The fstab entries are findmnt's, and the UUID and label ones name
	// the volumes that have them.
	wantMounts := findmntFstab(t, g.path("etc/fstab"))
	for i := range wantMounts {
		switch wantMounts[i].Path {
		case "/":
			wantMounts[i].Volume = "disk1.p2"
		case "/boot":
			wantMounts[i].Volume = "disk1.p1"
		case "/srv/data dir":
			wantMounts[i].Volume = "disk2"
		}
	}
	if !reflect.DeepEqual(o.Mounts, wantMounts) {
		t.Errorf("mounts %+v\nfindmnt says %+v", o.Mounts, wantMounts)
	}
	if len(o.Warnings) > 0 {
		t.Errorf("warnings for a clean guest: %q", o.Warnings)
	}
}

// TestHostileLinux inspects a guest whose files are traps: a symlink
// loop on /etc/os-release, a 10 MB os-release, a chain of 41 links to
// the shell, a hostname link that climbs above the root, an fstab of
// 2 MB, a /boot of many names. Each is skipped with a warning, the rest
// still read, and nothing outside the tree is touched.
func TestHostileLinux(t *testing.T) {
	g := newTree(t)
	g.link("os-release", "etc/os-release")
	g.write("usr/lib/os-release", []byte(strings.Repeat("ID=big\n", 10<<20/7+1)))
	g.copyHost("/etc/debian_version", "etc/debian_version")
	// /etc/hostname -> /../../etc/passwd must be the guest's passwd.
	guestPasswd := "guest-root-line\nroot:x:0:0::/root:/bin/sh\n"
	g.write("etc/passwd", []byte(guestPasswd))
	g.link("/../../etc/passwd", "etc/hostname")
	for i := 0; i <= 40; i++ {
		g.link(fmt.Sprint(i+1), fmt.Sprintf("chain/%d", i))
	}
	g.link("/usr/bin/dash", "chain/41")
	g.copyHost("/usr/bin/dash", "usr/bin/dash")
	g.link("/chain/0", "bin/sh")
	g.copyHost("/usr/bin/ls", "usr/bin/ls")
	g.write("etc/fstab", []byte(strings.Repeat("# padding\n", 2<<20/10+1)))
	for i := 0; i < 500; i++ {
		g.write(fmt.Sprintf("boot/config-%d", i), nil)
	}
	g.write("boot/vmlinuz-\x1b[31mred", nil)
	g.mkdir("lib/modules/6.1.0-ok")
	g.link("../../lib/modules", "lib/modules/loop")

	oses := Inspect([]Volume{g.volume("hostile", "", "")})
	if len(oses) != 1 {
		t.Fatalf("found %d systems", len(oses))
	}
	o := oses[0]
	if v := hostLine(t, "/etc/debian_version"); o.Distro != "debian" || o.Version != v {
		t.Errorf("fallback to debian_version: %q %q, the file says %q", o.Distro, o.Version, v)
	}
	if o.Hostname != "guest-root-line" {
		t.Errorf("hostname %q: the link must resolve to the guest's /etc/passwd", o.Hostname)
	}
	if a := hostUname(t); o.Arch != a {
		t.Errorf("arch %q (from /usr/bin/ls after /bin/sh's loop), uname -m says %q", o.Arch, a)
	}
	for _, w := range []string{"/etc/os-release: inspect: /etc/os-release: more than 40 links", "/usr/lib/os-release: inspect: /usr/lib/os-release: 1048", "file too large", "/bin/sh: inspect: /bin/sh: more than 40 links", "/etc/fstab"} {
		if !hasWarning(o, w) {
			t.Errorf("no warning about %q in %q", w, o.Warnings)
		}
	}
	if o.Mounts != nil {
		t.Errorf("mounts from a 2 MB fstab: %v", o.Mounts)
	}
	wantKernels := []Kernel{{Version: "6.1.0-ok", Modules: true}, {Version: "[31mred", Image: "/boot/vmlinuz-[31mred"}}
	if !reflect.DeepEqual(o.Kernels, wantKernels) {
		t.Errorf("kernels %+v, want %+v (the escape dropped)", o.Kernels, wantKernels)
	}
}

// TestNotRoots checks that volumes without a system yield nothing: an
// empty one, a /boot, a /var, and an /etc with nothing to say it is a
// root.
func TestNotRoots(t *testing.T) {
	empty := newTree(t)
	boot := newTree(t)
	boot.copyHost("/etc/debian_version", "vmlinuz-6.1.0")
	boot.mkdir("grub")
	varv := newTree(t)
	varv.mkdir("lib/dpkg")
	varv.mkdir("log")
	etcOnly := newTree(t)
	etcOnly.write("etc/motd", []byte("hi\n"))
	if oses := Inspect([]Volume{empty.volume("a", "", ""), boot.volume("b", "", ""), varv.volume("c", "", ""), etcOnly.volume("d", "", ""), {Name: "nil"}}); len(oses) != 0 {
		t.Errorf("systems found where there are none: %+v", oses)
	}
}

// TestOSReleaseMatchesShell parses os-release files written in every
// form os-release(5) allows, and the host's own, and compares each
// variable with what sh makes of it.
func TestOSReleaseMatchesShell(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"host": "/etc/os-release",
		"quoting": "# a comment\n" +
			"NAME=\"Some \\\"Quoted\\\" Linux\"\n" +
			"ID=some-linux\n" +
			"VERSION_ID='1.2 single'\n" +
			"PRETTY_NAME=\"Cost \\$5 \\\\ \\` backslashes\"\n" +
			"VERSION=\"1.2 (Code Name)\"\n" +
			"ID_LIKE=\"rhel fedora\"\n" +
			"EMPTY=\n" +
			"VARIANT_ID=bare # a trailing comment\n",
	}
	vars := []string{"NAME", "ID", "VERSION_ID", "PRETTY_NAME", "VERSION", "ID_LIKE", "EMPTY", "VARIANT_ID"}
	for name, content := range files {
		p := content
		if name != "host" {
			p = filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got := parseShellVars(b)
		want := shellRelease(t, p, vars...)
		for _, v := range vars {
			if got[v] != want[v] {
				t.Errorf("%s: %s = %q, sh says %q", name, v, got[v], want[v])
			}
		}
	}
}

// TestFstabMatchesFindmnt parses an fstab of the forms found in the wild
// and compares the entries with findmnt's.
func TestFstabMatchesFindmnt(t *testing.T) {
	content := "# comment\n\n" +
		"UUID=1234-ABCD  /boot/efi  vfat  umask=0077  0  1\n" +
		"\tLABEL=with\\040space\t/mnt/a\\011tab\text4\tdefaults\n" +
		"/dev/disk/by-uuid/01234567-89ab-cdef-0123-456789abcdef / xfs defaults,x-systemd.device-timeout=0 0 0\n" +
		"PARTUUID=0a1b2c3d-02 /home btrfs subvol=@home\n" +
		"server:/export /nfs nfs rw,hard\n" +
		"/swapfile none swap sw\n" +
		"proc /proc proc\n" +
		"/dev/sdb1 /backslash\\134name ext4\n"
	p := filepath.Join(t.TempDir(), "fstab")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got := parseFstab([]byte(content))
	want := findmntFstab(t, p)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fstab\n got %+v\nfindmnt %+v", got, want)
	}
}

// TestReleaseFallbacks reads the release files of systems older than
// os-release, as their distributions wrote them (the lines are those of
// CentOS 7, RHEL 6, SLES 11 SP4, Alpine 3.12 and Ubuntu 12.04).
func TestReleaseFallbacks(t *testing.T) {
	for _, c := range []struct {
		file, content           string
		distro, version, prefix string
	}{
		{"etc/redhat-release", "CentOS Linux release 7.9.2009 (Core)\n", "centos", "7.9.2009", "CentOS Linux"},
		{"etc/redhat-release", "Red Hat Enterprise Linux Server release 6.10 (Santiago)\n", "rhel", "6.10", "Red Hat"},
		{"etc/SuSE-release", "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n", "sles", "11.4", "SUSE Linux"},
		{"etc/alpine-release", "3.12.0\n", "alpine", "3.12.0", "Alpine Linux v3.12.0"},
		{"etc/lsb-release", "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=12.04\nDISTRIB_CODENAME=precise\nDISTRIB_DESCRIPTION=\"Ubuntu 12.04.5 LTS\"\n", "ubuntu", "12.04", "Ubuntu 12.04.5"},
	} {
		g := newTree(t)
		g.write(c.file, []byte(c.content))
		oses := Inspect([]Volume{g.volume("v", "", "")})
		if len(oses) != 1 {
			t.Errorf("%s: found %d systems", c.file, len(oses))
			continue
		}
		o := oses[0]
		if o.Distro != c.distro || o.Version != c.version || !strings.HasPrefix(o.Name, c.prefix) {
			t.Errorf("%s: %q %q %q, want %q %q %q...", c.file, o.Distro, o.Version, o.Name, c.distro, c.version, c.prefix)
		}
	}
}

// TestHostnameFallbacks reads the older places a hostname was kept.
func TestHostnameFallbacks(t *testing.T) {
	g := newTree(t)
	g.copyHost("/etc/os-release", "etc/os-release")
	g.write("etc/sysconfig/network", []byte("NETWORKING=yes\nHOSTNAME=\"rhel6.example.com\"\n"))
	if o := Inspect([]Volume{g.volume("v", "", "")}); len(o) != 1 || o[0].Hostname != "rhel6.example.com" {
		t.Errorf("sysconfig/network: %+v", o)
	}
	g = newTree(t)
	g.copyHost("/etc/os-release", "etc/os-release")
	g.write("etc/HOSTNAME", []byte("suse.example.com\n"))
	if o := Inspect([]Volume{g.volume("v", "", "")}); len(o) != 1 || o[0].Hostname != "suse.example.com" {
		t.Errorf("/etc/HOSTNAME: %+v", o)
	}
}

func TestVersionOrder(t *testing.T) {
	vs := []string{"5.10.0-9-amd64", "4.19.0-21-amd64", "5.10.0-10-amd64", "5.9.1", "6.1.0-18-amd64", "5.10.0-10-amd64+debug"}
	want := []string{"4.19.0-21-amd64", "5.9.1", "5.10.0-9-amd64", "5.10.0-10-amd64", "5.10.0-10-amd64+debug", "6.1.0-18-amd64"}
	o := OS{}
	for _, v := range vs {
		o.Kernels = append(o.Kernels, Kernel{Version: v})
	}
	sortKernels(&o)
	for i, k := range o.Kernels {
		if k.Version != want[i] {
			t.Fatalf("order %v, want %v", o.Kernels, want)
		}
	}
}
