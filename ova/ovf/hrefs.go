package ovf

import "strings"

// checkHref says what is wrong with a File href for a package read from an
// archive, or "" when nothing is. Such hrefs are reported, not refused: the
// caller, which knows the archive, refuses to follow them.
func checkHref(href string) string {
	switch {
	case href == "":
		return "is empty"
	case strings.ContainsFunc(href, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "contains a control character"
	case isURL(href):
		return "is a URL, not a file in the package"
	case href[0] == '/' || href[0] == '\\' || (len(href) >= 2 && href[1] == ':' && isLetter(href[0])):
		return "is an absolute path"
	}
	for _, part := range strings.FieldsFunc(href, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "climbs out of the package with \"..\""
		}
	}
	return ""
}

// isURL reports whether s starts with a URI scheme of two or more
// characters ("http:", "file:"); one letter and a colon is a drive.
func isURL(s string) bool {
	i := strings.IndexByte(s, ':')
	if i < 2 || !isLetter(s[0]) {
		return false
	}
	for j := 1; j < i; j++ {
		c := s[j]
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// parseHostResource reads a rasd:HostResource: "ovf:/disk/<diskId>",
// "ovf:/file/<fileId>", or the older "/disk/<id>". canonical is false for
// forms a lenient reader accepts but the spec does not write, such as
// VirtualCenter 2008's "ovf://disk/<id>".
func parseHostResource(s string) (kind, id string, canonical, ok bool) {
	rest := s
	scheme := len(rest) >= 4 && strings.EqualFold(rest[:4], "ovf:")
	if scheme {
		rest = rest[4:]
	}
	trimmed := strings.TrimLeft(rest, "/")
	slashes := len(rest) - len(trimmed)
	if slashes == 0 {
		return "", "", false, false
	}
	for _, k := range []string{"disk", "file"} {
		if len(trimmed) > len(k)+1 && strings.EqualFold(trimmed[:len(k)+1], k+"/") {
			id = trimmed[len(k)+1:]
			canonical = slashes == 1 && trimmed[:len(k)] == k && (scheme || k == "disk")
			return k, id, canonical, true
		}
	}
	return "", "", false, false
}
