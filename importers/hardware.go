package importers

import (
	"fmt"
	"strconv"
	"strings"
)

// esxiHardware maps each virtual hardware version to the first ESXi
// release that runs it (Broadcom KB 315655, formerly VMware KB 1003746).
// Versions not listed (5, 6, 12, 16) were never ESXi's.
var esxiHardware = []struct {
	vmx     int
	release string
}{
	{4, "3.5"}, {7, "4.0"}, {8, "5.0"}, {9, "5.1"}, {10, "5.5"}, {11, "6.0"}, {13, "6.5"},
	{14, "6.7"}, {15, "6.7U2"}, {17, "7.0"}, {18, "7.0U1"}, {19, "7.0U2"}, {20, "8.0"}, {21, "8.0U2"},
}

// firstRelease is the oldest ESXi release that runs vmx-n, or "" when the
// table does not know n.
func firstRelease(n int) string {
	for _, h := range esxiHardware {
		if h.vmx == n {
			return h.release
		}
	}
	return ""
}

// maxHardware is the newest hardware version an ESXi release runs: that
// of the newest release in the table not after it ("7.0U3" runs what
// "7.0U2" does). It reports false for a name that is not "X.Y" or "X.YUn",
// or a release older than the table.
func maxHardware(release string) (int, bool) {
	want, ok := releaseKey(release)
	if !ok {
		return 0, false
	}
	best := -1
	for _, h := range esxiHardware {
		if k, _ := releaseKey(h.release); k <= want {
			best = h.vmx
		}
	}
	return best, best > 0
}

// releaseKey orders releases: major, minor and update packed in one int.
func releaseKey(r string) (int, bool) {
	r = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(r), " ", ""))
	base, upd, hasU := strings.Cut(r, "U")
	maj, min, ok := strings.Cut(base, ".")
	if !ok {
		return 0, false
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	u, err3 := 0, error(nil)
	if hasU {
		u, err3 = strconv.Atoi(upd)
	}
	if err1 != nil || err2 != nil || err3 != nil || a < 0 || b < 0 || u < 0 || a > 99 || b > 99 || u > 99 {
		return 0, false
	}
	return a*10000 + b*100 + u, true
}

// ValidVSphereVersion reports whether release names an ESXi release the
// hardware table knows ("6.7", "7.0U2", "8.0").
func ValidVSphereVersion(release string) bool {
	_, ok := maxHardware(release)
	return ok
}

// hardware checks each system's vssd:VirtualSystemType against the ESXi
// hardware versions.
func (c *checker) hardware() {
	limit, haveLimit := 0, false
	if c.opts.VSphereVersion != "" {
		limit, haveLimit = maxHardware(c.opts.VSphereVersion)
	}
	newest := esxiHardware[len(esxiHardware)-1]
	for _, vs := range c.p.Descriptor.Env.Systems {
		fam := strings.Fields(vs.HardwareFamily)
		if len(fam) == 0 {
			continue
		}
		subject := "VirtualSystem " + vs.ID
		best := -1
		for _, f := range fam {
			if n, ok := vmxNumber(f); ok && n > best {
				best = n
			}
		}
		if best < 0 {
			c.add(breach{rule: "hardware-version", subject: subject,
				message: fmt.Sprintf("the hardware family %q names no vmx-NN version; vSphere refuses it as an unsupported hardware family", vs.HardwareFamily),
				fix:     "add a vmx-NN family (e.g. \"vmx-13 " + vs.HardwareFamily + "\") to vssd:VirtualSystemType, or deploy with ovftool --lax"})
			continue
		}
		lowest := best
		for _, f := range fam {
			if n, ok := vmxNumber(f); ok && n < lowest {
				lowest = n
			}
		}
		switch rel := firstRelease(lowest); {
		case haveLimit && lowest > limit:
			c.add(breach{rule: "hardware-version", subject: subject,
				message: fmt.Sprintf("vmx-%d needs ESXi %s or later; ESXi %s runs up to vmx-%d", lowest, orUnknown(rel), c.opts.VSphereVersion, limit),
				fix:     fmt.Sprintf("list vmx-%d in vssd:VirtualSystemType (space-separated families are allowed) if the guest runs on it", limit)})
		case haveLimit:
		case lowest > newest.vmx:
			c.add(breach{rule: "hardware-version", subject: subject, sev: Warn,
				message: fmt.Sprintf("vmx-%d is newer than the newest version this check knows (vmx-%d, ESXi %s)", lowest, newest.vmx, newest.release),
				fix:     "check the target's ESXi release runs it, or list an older vmx-NN too"})
		default:
			c.add(breach{rule: "hardware-version", subject: subject, sev: Warn,
				message: fmt.Sprintf("vmx-%d needs ESXi %s or later", lowest, orUnknown(rel)),
				fix:     "name your vSphere release with --vsphere-version to check it, or list an older vmx-NN too"})
		}
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(a release this check does not know)"
	}
	return s
}

// vmxNumber reads "vmx-13" (or "vmx-07").
func vmxNumber(f string) (int, bool) {
	s, ok := strings.CutPrefix(strings.ToLower(f), "vmx-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0 && n < 1000
}

// oldVSphere reports whether --vsphere-version names a release older than
// 6.5, whose C# client takes SHA1 manifests only.
func (c *checker) oldVSphere() bool {
	k, ok := releaseKey(c.opts.VSphereVersion)
	return ok && k < 60500
}
