package inspect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/inspect/regf"
)

// inspectWindows describes v when it holds a Windows system root: a
// \Windows (or \WINNT) folder with System32\config\SOFTWARE.
func inspectWindows(v Volume) (OS, bool) {
	fsys := v.FS
	var sysroot string
	var software uint64
	for _, root := range []string{"Windows", "WINNT"} {
		ino, err := walkFold(fsys, root, "System32", "config", "SOFTWARE")
		if err == nil {
			sysroot, software = root, ino
			break
		}
	}
	if sysroot == "" {
		return OS{}, false
	}
	o := OS{Volume: v.Name, Type: "windows", Distro: "windows"}
	if h := o.openHive(fsys, software, sysroot+`\System32\config\SOFTWARE`); h != nil {
		o.software(h)
	}
	if ino, err := walkFold(fsys, sysroot, "System32", "config", "SYSTEM"); err == nil {
		if h := o.openHive(fsys, ino, sysroot+`\System32\config\SYSTEM`); h != nil {
			o.system(h)
		}
	} else if !notFound(err) {
		o.warn(`%s\System32\config\SYSTEM: %v`, sysroot, err)
	}
	if ino, err := walkFold(fsys, sysroot, "System32", "cmd.exe"); err == nil {
		if b, err := readInoHead(fsys, ino, peHeaderMax+6); err == nil {
			o.Arch, _ = peArch(b)
		} else {
			o.warn(`%s\System32\cmd.exe: %v`, sysroot, err)
		}
	}
	return o, true
}

// walkFold looks a path up from the root, each name matched ignoring case
// as Windows does: NTFS's own lookup already ignores it, and for other
// filesystems the directory is scanned. Every name but the last must be
// a directory; symlinks are not followed, since a Windows system folder
// is never one.
func walkFold(fsys guestfs.FS, names ...string) (uint64, error) {
	ino := fsys.Root()
	for i, name := range names {
		e, err := lookupFold(fsys, ino, name)
		if err != nil {
			return 0, err
		}
		if i < len(names)-1 {
			typ := e.Type
			if typ == 0 {
				a, err := fsys.Stat(e.Ino)
				if err != nil {
					return 0, err
				}
				typ = a.Mode & guestfs.TypeMask
			}
			if typ != guestfs.TypeDir {
				return 0, fmt.Errorf("inspect: %q: %w", name, guestfs.ErrNotDir)
			}
		}
		ino = e.Ino
	}
	return ino, nil
}

func lookupFold(fsys guestfs.FS, dir uint64, name string) (guestfs.DirEntry, error) {
	e, err := fsys.Lookup(dir, name)
	if err == nil || !errors.Is(err, guestfs.ErrNotExist) {
		return e, err
	}
	var found guestfs.DirEntry
	n := 0
	serr := fsys.ReadDir(dir, func(d guestfs.DirEntry) error {
		if strings.EqualFold(d.Name, name) {
			found = d
			return errEnough
		}
		if n++; n > maxDirScan {
			return errEnough
		}
		return nil
	})
	if found.Name != "" {
		return found, nil
	}
	if serr != nil && !errors.Is(serr, errEnough) {
		return e, serr
	}
	return e, err
}

// openHive opens a registry hive file; it is read on demand, never
// whole (a SOFTWARE hive is tens of megabytes).
func (o *OS) openHive(fsys guestfs.FS, ino uint64, name string) *regf.Hive {
	f, err := fsys.Open(ino)
	if err != nil {
		o.warn("%s: %v", name, err)
		return nil
	}
	h, err := regf.Open(f, f.Size())
	if err != nil {
		o.warn("%s: %v", name, err)
		return nil
	}
	for _, w := range h.Warnings {
		o.warn("%s: %s", name, w)
	}
	return h
}

// str reads a string value, warning about anything but its absence.
func (o *OS) str(k *regf.Key, name string) string {
	v, err := k.Value(name)
	if err != nil {
		if !errors.Is(err, regf.ErrNotFound) {
			o.warn("%v", err)
		}
		return ""
	}
	s, err := v.String()
	if err != nil {
		o.warn("%v", err)
	}
	return s
}

// num reads a DWORD value.
func (o *OS) num(k *regf.Key, name string) (uint64, bool) {
	v, err := k.Value(name)
	if err != nil {
		if !errors.Is(err, regf.ErrNotFound) {
			o.warn("%v", err)
		}
		return 0, false
	}
	n, err := v.Uint()
	if err != nil {
		o.warn("%v", err)
		return 0, false
	}
	return n, true
}

// software reads the product, version, build and edition from
// HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion.
func (o *OS) software(h *regf.Hive) {
	cv, err := h.Open(`Microsoft\Windows NT\CurrentVersion`)
	if err != nil {
		o.warn(`SOFTWARE\Microsoft\Windows NT\CurrentVersion: %v`, err)
		return
	}
	o.Name = o.str(cv, "ProductName")
	// Windows 10 and later keep the true version in these DWORDs;
	// CurrentVersion stays "6.3" for compatibility.
	if major, ok := o.num(cv, "CurrentMajorVersionNumber"); ok {
		minor, _ := o.num(cv, "CurrentMinorVersionNumber")
		o.Version = fmt.Sprintf("%d.%d", major, minor)
	} else {
		o.Version = o.str(cv, "CurrentVersion")
	}
	o.Build = o.str(cv, "CurrentBuildNumber")
	if o.Build == "" {
		o.Build = o.str(cv, "CurrentBuild")
	}
	if ubr, ok := o.num(cv, "UBR"); ok && o.Build != "" {
		o.Build += "." + strconv.FormatUint(ubr, 10)
	}
	o.Edition = o.str(cv, "EditionID")
	o.DisplayVersion = o.str(cv, "DisplayVersion")
	if o.DisplayVersion == "" {
		o.DisplayVersion = o.str(cv, "ReleaseId")
	}
	// Windows 11 kept Windows 10's ProductName; Microsoft tells them
	// apart by the build, 22000 and later being Windows 11.
	if build, err := strconv.Atoi(strings.SplitN(o.Build, ".", 2)[0]); err == nil && build >= 22000 {
		if rest, ok := strings.CutPrefix(o.Name, "Windows 10"); ok && !strings.Contains(o.Name, "Server") {
			o.warn("ProductName %q is what Windows 11 keeps from Windows 10; build %d is Windows 11's", o.Name, build)
			o.Name = "Windows 11" + rest
		}
	}
}

// system reads the hostname from HKLM\SYSTEM, in the control set the
// system boots with (Select\Current).
func (o *OS) system(h *regf.Hive) {
	set := "ControlSet001"
	if sel, err := h.Open("Select"); err == nil {
		if n, ok := o.num(sel, "Current"); ok && n > 0 && n < 1000 {
			set = fmt.Sprintf("ControlSet%03d", n)
		}
	}
	if k, err := h.Open(set + `\Services\Tcpip\Parameters`); err == nil {
		if o.Hostname = o.str(k, "Hostname"); o.Hostname != "" {
			return
		}
	}
	k, err := h.Open(set + `\Control\ComputerName\ComputerName`)
	if err != nil {
		if !errors.Is(err, regf.ErrNotFound) {
			o.warn(`SYSTEM\%s: %v`, set, err)
		}
		return
	}
	o.Hostname = o.str(k, "ComputerName")
}
