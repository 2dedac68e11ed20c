package ova

import "strings"

// maxNameComponent is the longest name the kernel accepts for one path
// component (NAME_MAX); a longer one could never be looked up in the mount.
const maxNameComponent = 255

// cleanName turns a stored name into the path it is mounted at. A leading
// "/" is removed, as GNU tar does ("Removing leading `/' from member
// names"), and "." components and repeated slashes are dropped. A name that
// cannot be mounted safely is refused with the reason: it contains "..",
// a NUL byte, or a component too long for the kernel. The root ("" or "./")
// comes back as "" with ok set.
func cleanName(raw string) (name, note string, ok bool) {
	if isCleanName(raw) {
		return raw, "", true
	}
	if strings.IndexByte(raw, 0) >= 0 {
		return "", "the name contains a NUL byte", false
	}
	trimmed := strings.TrimLeft(raw, "/")
	if trimmed != raw && strings.Trim(trimmed, "/.") != "" {
		note = "leading \"/\" removed"
	}
	parts := strings.Split(trimmed, "/")
	kept := parts[:0]
	for _, p := range parts {
		switch {
		case p == "" || p == ".":
			continue
		case p == "..":
			return "", "the name contains \"..\"", false
		case len(p) > maxNameComponent:
			return "", "a path component is longer than 255 bytes", false
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "/"), note, true
}

// parentOf returns the directory holding name ("" for the root's children).
func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

// baseOf returns the last component of name.
func baseOf(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// isCleanName is the fast path for the usual name, which needs no change:
// no leading or trailing "/", no empty, "." or ".." component, no NUL, and
// no component over the kernel's limit.
func isCleanName(s string) bool {
	if s == "" {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '/' {
			if s[i] == 0 {
				return false
			}
			continue
		}
		c := s[start:i]
		if c == "" || c == "." || c == ".." || len(c) > maxNameComponent {
			return false
		}
		start = i + 1
	}
	return true
}
