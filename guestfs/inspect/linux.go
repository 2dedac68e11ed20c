package inspect

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

// The most the inspection reads of each file: what is larger is not what
// it claims to be, and is skipped with a warning.
const (
	maxReleaseFile = 64 << 10 // os-release, redhat-release, hostname...
	maxFstab       = 1 << 20
	// maxDirScan bounds the entries read from /boot or /lib/modules, and
	// maxKernels the kernels kept: a hostile directory of a million names
	// costs a bounded walk.
	maxDirScan = 100000
	maxKernels = 1000
)

// inspectLinux describes v when it is the root filesystem of a Linux
// system: it has /etc and either an os-release or another release file,
// or an /etc/fstab.
func inspectLinux(v Volume) (OS, bool) {
	fsys := v.FS
	if !isDir(fsys, "/etc") {
		return OS{}, false
	}
	o := OS{Volume: v.Name, Type: "linux"}
	found := false
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, ok := o.read(fsys, p, maxReleaseFile)
		if ok {
			o.osRelease(parseShellVars(b))
			found = true
			break
		}
	}
	if found && o.Version == "" && o.Distro == "debian" {
		// Debian testing and unstable name no VERSION_ID.
		if b, ok := o.read(fsys, "/etc/debian_version", maxReleaseFile); ok {
			o.Version = firstLine(b)
		}
	}
	if !found {
		found = o.releaseFiles(fsys)
	}
	if !found && !isFile(fsys, "/etc/fstab") {
		return OS{}, false
	}
	o.hostname(fsys)
	o.arch(fsys)
	o.packages(fsys)
	if b, ok := o.read(fsys, "/etc/fstab", maxFstab); ok {
		o.Mounts = parseFstab(b)
	}
	addImages(&o, fsys, "/boot", "/boot/")
	o.modules(fsys)
	sortKernels(&o)
	return o, true
}

// read reads a small file, with a warning for what is there but cannot be
// read (too large, a symlink loop, a damaged volume); an absent file is
// no news.
func (o *OS) read(fsys guestfs.FS, path string, limit int64) ([]byte, bool) {
	b, err := ReadFile(fsys, path, limit)
	if err == nil {
		return b, true
	}
	if !notFound(err) {
		o.warn("%s: %v", path, err)
	}
	return nil, false
}

func (o *OS) warn(format string, args ...any) {
	o.Warnings = append(o.Warnings, fmt.Sprintf(format, args...))
}

// releaseFiles reads the files distributions kept before os-release.
func (o *OS) releaseFiles(fsys guestfs.FS) bool {
	if b, ok := o.read(fsys, "/etc/redhat-release", maxReleaseFile); ok {
		o.redhatRelease(b)
		return true
	}
	if b, ok := o.read(fsys, "/etc/SuSE-release", maxReleaseFile); ok {
		o.suseRelease(b)
		return true
	}
	if b, ok := o.read(fsys, "/etc/alpine-release", maxReleaseFile); ok {
		o.Distro, o.Version = "alpine", firstLine(b)
		o.Name = "Alpine Linux v" + o.Version
		return true
	}
	if b, ok := o.read(fsys, "/etc/lsb-release", maxReleaseFile); ok && o.lsbRelease(parseShellVars(b)) {
		return true
	}
	if b, ok := o.read(fsys, "/etc/debian_version", maxReleaseFile); ok {
		o.Distro, o.Version = "debian", firstLine(b)
		o.Name = "Debian GNU/Linux " + o.Version
		return true
	}
	return false
}

// hostname reads /etc/hostname, or Red Hat's older
// /etc/sysconfig/network, or SUSE's /etc/HOSTNAME.
func (o *OS) hostname(fsys guestfs.FS) {
	if b, ok := o.read(fsys, "/etc/hostname", maxReleaseFile); ok {
		if o.Hostname = firstLine(b); o.Hostname != "" {
			return
		}
	}
	if b, ok := o.read(fsys, "/etc/sysconfig/network", maxReleaseFile); ok {
		if o.Hostname = parseShellVars(b)["HOSTNAME"]; o.Hostname != "" {
			return
		}
	}
	if b, ok := o.read(fsys, "/etc/HOSTNAME", maxReleaseFile); ok {
		o.Hostname = firstLine(b)
	}
}

// arch reads the ELF header of the shell (or of ls).
func (o *OS) arch(fsys guestfs.FS) {
	for _, p := range []string{"/bin/sh", "/usr/bin/sh", "/bin/ls", "/usr/bin/ls", "/bin/busybox"} {
		h, err := readHead(fsys, p, 64)
		if err != nil {
			if !notFound(err) {
				o.warn("%s: %v", p, err)
			}
			continue
		}
		if a, ok := elfArch(h); ok {
			o.Arch = a
			return
		}
	}
}

// packages tells the package format by its database, and the manager by
// its program.
func (o *OS) packages(fsys guestfs.FS) {
	first := func(paths ...string) string {
		for _, p := range paths {
			if isFile(fsys, p) {
				return p[strings.LastIndexByte(p, '/')+1:]
			}
		}
		return ""
	}
	switch {
	case isFile(fsys, "/var/lib/dpkg/status"):
		o.PackageFormat, o.PackageManager = "deb", "dpkg"
		if first("/usr/bin/apt-get", "/usr/bin/apt") != "" {
			o.PackageManager = "apt"
		}
	case isDir(fsys, "/var/lib/rpm") || isDir(fsys, "/usr/lib/sysimage/rpm"):
		o.PackageFormat = "rpm"
		switch m := first("/usr/bin/dnf5", "/usr/bin/dnf", "/usr/bin/tdnf", "/usr/bin/zypper", "/usr/bin/yum"); m {
		case "dnf5":
			o.PackageManager = "dnf"
		default:
			o.PackageManager = m
		}
	case isFile(fsys, "/lib/apk/db/installed"):
		o.PackageFormat, o.PackageManager = "apk", "apk"
	case isDir(fsys, "/var/lib/pacman"):
		o.PackageFormat, o.PackageManager = "pacman", "pacman"
	}
}

// errEnough ends a directory scan that has seen enough.
var errEnough = errors.New("enough entries")

// scanDir calls fn for at most maxDirScan entries of the directory at
// path; an absent directory is no news.
func (o *OS) scanDir(fsys guestfs.FS, path string, fn func(guestfs.DirEntry) bool) {
	ino, err := Resolve(fsys, path)
	if err != nil {
		if !notFound(err) {
			o.warn("%s: %v", path, err)
		}
		return
	}
	n := 0
	err = fsys.ReadDir(ino, func(e guestfs.DirEntry) error {
		if n++; n > maxDirScan {
			o.warn("%s: more than %d entries; the rest were not read", path, maxDirScan)
			return errEnough
		}
		if !fn(e) {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) && !notFound(err) {
		o.warn("%s: %v", path, err)
	}
}

// kernel finds or adds the kernel of a version.
func (o *OS) kernel(version string) *Kernel {
	for i := range o.Kernels {
		if o.Kernels[i].Version == version {
			return &o.Kernels[i]
		}
	}
	if len(o.Kernels) >= maxKernels {
		return nil
	}
	o.Kernels = append(o.Kernels, Kernel{Version: version})
	return &o.Kernels[len(o.Kernels)-1]
}

// addImages adds the kernel images (vmlinuz-VERSION, vmlinux-VERSION)
// of dir in fsys, shown in the guest under prefix.
func addImages(o *OS, fsys guestfs.FS, dir, prefix string) {
	o.scanDir(fsys, dir, func(e guestfs.DirEntry) bool {
		for _, p := range []string{"vmlinuz-", "vmlinux-"} {
			if v, ok := strings.CutPrefix(e.Name, p); ok && v != "" {
				k := o.kernel(clean(v))
				if k == nil {
					return false
				}
				if k.Image == "" {
					k.Image = clean(prefix + e.Name)
				}
			}
		}
		return true
	})
}

// modules adds the kernels whose modules are in /lib/modules.
func (o *OS) modules(fsys guestfs.FS) {
	o.scanDir(fsys, "/lib/modules", func(e guestfs.DirEntry) bool {
		typ := e.Type
		if typ == 0 {
			if a, err := fsys.Stat(e.Ino); err == nil {
				typ = a.Mode & guestfs.TypeMask
			}
		}
		if typ != guestfs.TypeDir {
			return true
		}
		k := o.kernel(clean(e.Name))
		if k == nil {
			return false
		}
		k.Modules = true
		return true
	})
}

// clean makes every string the guest supplied safe to print.
func (o *OS) clean() {
	for _, s := range []*string{&o.Distro, &o.Name, &o.Version, &o.Build, &o.Edition, &o.DisplayVersion, &o.Hostname} {
		*s = clean(*s)
	}
	for i := range o.Mounts {
		m := &o.Mounts[i]
		m.Spec, m.Path, m.Type, m.Options = clean(m.Spec), clean(m.Path), clean(m.Type), clean(m.Options)
	}
	for i, w := range o.Warnings {
		o.Warnings[i] = strings.ToValidUTF8(strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return '?'
			}
			return r
		}, w), "\uFFFD")
	}
}
