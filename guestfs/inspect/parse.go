package inspect

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxField is the longest string the inspection reports from a guest's
// file: names, versions and hostnames are short, and whatever is longer is
// cut rather than carried into a listing.
const maxField = 256

// clean makes a string from the guest safe to print: invalid UTF-8
// becomes U+FFFD, control characters (escape sequences a terminal would
// obey) are dropped, and it is cut to maxField bytes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxField {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// lines calls fn for each line of b, without its end.
func lines(b []byte, fn func(string) bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), len(b)+1)
	for sc.Scan() {
		if !fn(sc.Text()) {
			return
		}
	}
}

// parseShellVars reads the KEY=value assignments of os-release(5),
// /etc/lsb-release and /etc/sysconfig/network: a value may be quoted with
// double quotes (inside which \ escapes $ " \ and `) or single quotes, or
// be bare; comments and lines of other forms are skipped. The first
// assignment of a key wins, as a shell's last would not: a guest that
// repeats one is damaged, and the first is what a human reads.
func parseShellVars(b []byte) map[string]string {
	out := map[string]string{}
	lines(b, func(line string) bool {
		line = strings.TrimSpace(line)
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.HasPrefix(k, "#") || strings.ContainsAny(k, " \t") {
			return true
		}
		if _, dup := out[k]; !dup {
			out[k] = unquote(v)
		}
		return true
	})
	return out
}

func unquote(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	switch v[0] {
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return v[1:]
		}
		return v[1 : 1+end]
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			if c == '"' {
				break
			}
			if c == '\\' && i+1 < len(v) && strings.IndexByte("$\"\\`", v[i+1]) >= 0 {
				i++
				c = v[i]
			}
			b.WriteByte(c)
		}
		return b.String()
	}
	// A bare value ends at the first blank or comment.
	if i := strings.IndexAny(v, " \t#"); i >= 0 {
		v = v[:i]
	}
	return v
}

// osRelease fills in what an os-release file says.
func (o *OS) osRelease(vars map[string]string) {
	o.Distro = vars["ID"]
	o.Version = vars["VERSION_ID"]
	o.Name = vars["PRETTY_NAME"]
	if o.Name == "" {
		o.Name = strings.TrimSpace(vars["NAME"] + " " + vars["VERSION"])
	}
}

var releaseVersion = regexp.MustCompile(`release\s+([0-9][0-9.]*)`)

// redhatRelease reads /etc/redhat-release ("CentOS Linux release 7.9.2009
// (Core)"), which Red Hat's family kept before os-release.
func (o *OS) redhatRelease(b []byte) {
	line := firstLine(b)
	o.Name = line
	if m := releaseVersion.FindStringSubmatch(line); m != nil {
		o.Version = strings.TrimSuffix(m[1], ".")
	}
	o.Distro = "redhat-based"
	for _, d := range []struct{ prefix, id string }{
		{"Fedora", "fedora"}, {"CentOS", "centos"}, {"Red Hat Enterprise Linux", "rhel"},
		{"Rocky", "rocky"}, {"AlmaLinux", "almalinux"}, {"Oracle Linux", "ol"},
		{"Scientific Linux", "scientific"}, {"VMware Photon", "photon"},
	} {
		if strings.HasPrefix(line, d.prefix) {
			o.Distro = d.id
			break
		}
	}
}

// suseRelease reads /etc/SuSE-release: a name line, then "VERSION = 11"
// and "PATCHLEVEL = 4".
func (o *OS) suseRelease(b []byte) {
	o.Name = firstLine(b)
	o.Distro = "sles"
	if strings.HasPrefix(strings.ToLower(o.Name), "opensuse") {
		o.Distro = "opensuse"
	}
	var ver, patch string
	lines(b, func(l string) bool {
		k, v, ok := strings.Cut(l, "=")
		if ok {
			switch strings.TrimSpace(k) {
			case "VERSION":
				ver = strings.TrimSpace(v)
			case "PATCHLEVEL":
				patch = strings.TrimSpace(v)
			}
		}
		return true
	})
	o.Version = ver
	if ver != "" && patch != "" {
		o.Version = ver + "." + patch
	}
}

// lsbRelease reads /etc/lsb-release (Ubuntu before os-release).
func (o *OS) lsbRelease(vars map[string]string) bool {
	if vars["DISTRIB_ID"] == "" {
		return false
	}
	o.Distro = strings.ToLower(vars["DISTRIB_ID"])
	o.Version = vars["DISTRIB_RELEASE"]
	o.Name = vars["DISTRIB_DESCRIPTION"]
	return true
}

func firstLine(b []byte) string {
	s := ""
	lines(b, func(l string) bool {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			s = l
			return false
		}
		return true
	})
	return s
}

// maxMounts bounds the fstab entries kept: no real system has more.
const maxMounts = 1000

// parseFstab reads fstab(5) lines: device, mount point, type, options
// (and two numbers not kept), blank-separated, with spaces and other
// bytes in names written as octal escapes (\040).
func parseFstab(b []byte) []Mount {
	var out []Mount
	lines(b, func(l string) bool {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			return true
		}
		m := Mount{Spec: unescapeOctal(f[0]), Path: unescapeOctal(f[1])}
		if len(f) > 2 {
			m.Type = unescapeOctal(f[2])
		}
		if len(f) > 3 {
			m.Options = unescapeOctal(f[3])
		}
		out = append(out, m)
		return len(out) < maxMounts
	})
	return out
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] <= '3' && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
