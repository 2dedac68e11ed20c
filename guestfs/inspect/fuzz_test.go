package inspect

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParsers feeds the text and header parsers the inspection applies
// to a guest's files (os-release and other shell-style files, release
// files, fstab, ELF and PE headers) with mutated real content: they must
// never panic, and what they return must be printable once cleaned.
func FuzzParsers(f *testing.F) {
	for _, p := range []string{"/etc/os-release", "/etc/debian_version", "/usr/bin/dash"} {
		if b, err := readHostHead(p, 4096); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("UUID=1234 / ext4 defaults 0 1\nLABEL=a\\040b /x\\134y xfs\n"))
	f.Add([]byte("CentOS Linux release 7.9.2009 (Core)\nVERSION = 11\nPATCHLEVEL = 4\n"))
	f.Add([]byte("MZ" + strings.Repeat("\x00", 0x3a) + "\x40\x00\x00\x00PE\x00\x00\x64\x86"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o OS
		o.osRelease(parseShellVars(b))
		o.redhatRelease(b)
		o.suseRelease(b)
		o.lsbRelease(parseShellVars(b))
		ms := parseFstab(b)
		if len(ms) > maxMounts {
			t.Fatalf("%d mounts", len(ms))
		}
		elfArch(b)
		peArch(b)
		for _, s := range []string{o.Name, o.Version, o.Distro, firstLine(b), unescapeOctal(string(b))} {
			c := clean(s)
			if !utf8.ValidString(c) || len(c) > maxField || strings.ContainsAny(c, "\x1b\x00\r\n") {
				t.Fatalf("clean(%q) = %q", s, c)
			}
		}
	})
}
