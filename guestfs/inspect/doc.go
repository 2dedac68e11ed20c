// Package inspect finds the operating systems on a disk's filesystems and
// describes each, as virt-inspector does, by reading a few files through
// the guestfs.FS interface: nothing is mounted, run or written.
//
// # What it reports
//
// A volume is a Linux root when it has an /etc directory and an
// os-release (/etc/os-release, else /usr/lib/os-release), a release file
// of an older system (/etc/redhat-release, /etc/SuSE-release,
// /etc/alpine-release, /etc/lsb-release, /etc/debian_version), or an
// /etc/fstab. For it: ID, VERSION_ID and PRETTY_NAME (Debian testing's
// missing VERSION_ID taken from /etc/debian_version); the hostname
// (/etc/hostname, /etc/sysconfig/network, /etc/HOSTNAME); the kernels
// (/boot/vmlinuz-* and /boot/vmlinux-*, of the root or of the volume its
// fstab mounts on /boot, and the directories of /lib/modules); the
// architecture (the ELF header of /bin/sh, or of ls or busybox); the
// package format and manager (dpkg's status file, an rpm database, apk's
// or pacman's); and the fstab entries, each tied to the volume its UUID=
// or LABEL= names.
//
// A volume is a Windows system root when it has
// \Windows\System32\config\SOFTWARE (or \WINNT\..., names matched
// ignoring case). For it, from the registry: ProductName, the version
// (CurrentMajorVersionNumber.CurrentMinorVersionNumber, else
// CurrentVersion), the build (CurrentBuildNumber.UBR), EditionID and
// DisplayVersion (else ReleaseId) from SOFTWARE's
// Microsoft\Windows NT\CurrentVersion; the hostname from SYSTEM's
// Services\Tcpip\Parameters\Hostname (else
// Control\ComputerName\ComputerName) in the control set Select\Current
// names; and the architecture from the PE header of System32\cmd.exe.
// Windows 11 keeps Windows 10's ProductName: a build of 22000 or later
// renames it, with a warning that says so. The hives are read by package
// regf, on demand.
//
// # What it promises
//
// Paths are resolved in the guest as its own kernel would (Resolve):
// symlinks followed, absolute ones from the guest's root, ".." never
// above it, at most 40 links. Files are read whole only when small
// (64 KiB for release and hostname files, 1 MiB for fstab); a larger one
// is skipped with a warning, as are link loops and files the filesystem
// cannot read, and the inspection goes on with the rest. Directory scans
// stop after 100,000 entries. Every string taken from the guest is made
// printable (invalid UTF-8 replaced, control characters dropped) and cut
// to 256 bytes.
//
// # What it leaves out
//
// A /usr on a volume of its own is not merged into its root (a root whose
// os-release is only there is still found by its fstab, with fewer
// facts); Windows drive letters (MountedDevices) and installed
// applications are not read; BSDs and other systems are not recognised.
// Device names in fstab (/dev/sda1, /dev/mapper/...) are not tied to
// volumes, since they depend on the guest's hardware.
package inspect
