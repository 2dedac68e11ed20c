package inspect

import (
	"errors"
	"sort"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Volume is an opened guest filesystem under the caller's name for it
// ("disk1.vmdk.p2", "disk1.vmdk.vg0-root").
type Volume struct {
	Name string
	FS   guestfs.FS
}

// OS is an operating system whose root filesystem was found.
type OS struct {
	// Volume is the caller's name of the root filesystem's volume.
	Volume string `json:"volume"`
	// Type is "linux" or "windows".
	Type string `json:"type"`
	// Distro is os-release's ID ("debian", "rhel", "alpine"), or
	// "windows".
	Distro string `json:"distro,omitempty"`
	// Name is os-release's PRETTY_NAME, or Windows' ProductName.
	Name string `json:"name,omitempty"`
	// Version is os-release's VERSION_ID, or Windows' major.minor
	// version ("10.0", "6.3").
	Version string `json:"version,omitempty"`
	// Build is Windows' build number ("19045").
	Build string `json:"build,omitempty"`
	// Edition is Windows' EditionID ("Professional", "ServerStandard").
	Edition string `json:"edition,omitempty"`
	// DisplayVersion is Windows' feature update ("22H2"), from
	// DisplayVersion or, before 20H2, ReleaseId.
	DisplayVersion string `json:"displayVersion,omitempty"`
	Hostname       string `json:"hostname,omitempty"`
	// Arch is the architecture of the guest's binaries, as uname -m names
	// it ("x86_64", "aarch64", "i386"): from the ELF header of /bin/sh,
	// or the PE header of Windows' cmd.exe. "" when unknown.
	Arch string `json:"arch,omitempty"`
	// Kernels are the Linux kernels installed: an image in /boot (of the
	// root filesystem, or of the volume fstab mounts on /boot) or modules
	// in /lib/modules. Sorted by version.
	Kernels []Kernel `json:"kernels,omitempty"`
	// PackageFormat is "deb", "rpm", "apk" or "pacman"; PackageManager
	// the tool that installs them ("apt", "dnf", "yum", "zypper", "apk",
	// "pacman"), where found.
	PackageFormat  string `json:"packageFormat,omitempty"`
	PackageManager string `json:"packageManager,omitempty"`
	// Mounts are the guest's /etc/fstab entries.
	Mounts []Mount `json:"mounts,omitempty"`
	// Warnings are what the inspection could not read or had to skip.
	Warnings []string `json:"warnings,omitempty"`
}

// Kernel is an installed Linux kernel.
type Kernel struct {
	Version string `json:"version"`
	// Image is the kernel's path in the guest ("/boot/vmlinuz-6.1.0-18-amd64"),
	// "" where only modules were found.
	Image string `json:"image,omitempty"`
	// Modules says /lib/modules/Version exists.
	Modules bool `json:"modules,omitempty"`
}

// Mount is one /etc/fstab entry.
type Mount struct {
	// Spec is what fstab names the device by: "UUID=...", "LABEL=...",
	// "/dev/sda1", "/dev/mapper/vg-root", "tmpfs".
	Spec string `json:"spec"`
	// Path is the mount point ("/", "/boot", "/var"), or "none"/"swap"
	// for swap.
	Path    string `json:"path"`
	Type    string `json:"type,omitempty"`
	Options string `json:"options,omitempty"`
	// Volume is the caller's name of the volume Spec designates, where it
	// designates one by UUID or label (UUID=, LABEL=, /dev/disk/by-uuid/,
	// /dev/disk/by-label/) and exactly one volume has it; "" otherwise
	// (device names depend on the guest's hardware, which the caller knows
	// better).
	Volume string `json:"volume,omitempty"`
}

// Inspect looks at each volume and describes the operating systems whose
// root filesystems it finds, in the order of vols. A volume that is not a
// root (a /boot, a /var, a data disk) yields nothing; a root whose files
// are damaged yields what could be read, with Warnings.
func Inspect(vols []Volume) []OS {
	var out []OS
	for _, v := range vols {
		if v.FS == nil {
			continue
		}
		if o, ok := inspectLinux(v); ok {
			out = append(out, o)
		} else if o, ok := inspectWindows(v); ok {
			out = append(out, o)
		}
	}
	for i := range out {
		o := &out[i]
		for j := range o.Mounts {
			o.Mounts[j].Volume = matchSpec(o.Mounts[j].Spec, vols)
		}
		if o.Type == "linux" {
			bootKernels(o, vols)
		}
		o.clean()
	}
	return out
}

// matchSpec finds the one volume an fstab spec names by UUID or label.
func matchSpec(spec string, vols []Volume) string {
	var uuid, label string
	switch {
	case strings.HasPrefix(spec, "UUID="):
		uuid = strings.Trim(spec[5:], `"`)
	case strings.HasPrefix(spec, "/dev/disk/by-uuid/"):
		uuid = spec[len("/dev/disk/by-uuid/"):]
	case strings.HasPrefix(spec, "LABEL="):
		label = strings.Trim(spec[6:], `"`)
	case strings.HasPrefix(spec, "/dev/disk/by-label/"):
		label = spec[len("/dev/disk/by-label/"):]
	default:
		return ""
	}
	found := ""
	for _, v := range vols {
		if v.FS == nil {
			continue
		}
		info := v.FS.Info()
		if (uuid != "" && strings.EqualFold(info.UUID, uuid)) || (label != "" && info.Label == label) {
			if found != "" {
				return "" // two volumes claim it (a cloned disk): say none
			}
			found = v.Name
		}
	}
	return found
}

// bootKernels adds the kernel images of the volume fstab mounts on /boot,
// when /boot is a volume of its own.
func bootKernels(o *OS, vols []Volume) {
	for _, m := range o.Mounts {
		if strings.TrimSuffix(m.Path, "/") != "/boot" || m.Volume == "" || m.Volume == o.Volume {
			continue
		}
		for _, v := range vols {
			if v.Name == m.Volume && v.FS != nil {
				addImages(o, v.FS, "/", "/boot/")
			}
		}
	}
	sortKernels(o)
}

func sortKernels(o *OS) {
	sort.Slice(o.Kernels, func(i, j int) bool { return versionLess(o.Kernels[i].Version, o.Kernels[j].Version) })
}

// versionLess orders kernel versions as humans do: runs of digits by
// their value ("5.10" after "5.9"), the rest as text.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// exists says whether path resolves (following links) in fsys, and to
// what type.
func exists(fsys guestfs.FS, path string) (uint32, bool) {
	ino, err := Resolve(fsys, path)
	if err != nil {
		return 0, false
	}
	a, err := fsys.Stat(ino)
	if err != nil {
		return 0, false
	}
	return a.Mode & guestfs.TypeMask, true
}

func isDir(fsys guestfs.FS, path string) bool {
	t, ok := exists(fsys, path)
	return ok && t == guestfs.TypeDir
}

func isFile(fsys guestfs.FS, path string) bool {
	t, ok := exists(fsys, path)
	return ok && t == guestfs.TypeRegular
}

// notFound says an error is only the file's absence, which needs no
// warning.
func notFound(err error) bool {
	return errors.Is(err, guestfs.ErrNotExist) || errors.Is(err, guestfs.ErrNotDir)
}
