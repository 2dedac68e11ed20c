package ova

import (
	"fmt"
	"path"
	"strings"
)

// LocalHref returns the package path an href names, or why it names none:
// an href must be a relative path inside the package. URLs, absolute paths
// and ".." are refused, as virt-v2v refuses them.
func LocalHref(href string) (string, error) {
	if i := strings.Index(href, ":"); i > 0 && !strings.ContainsAny(href[:i], "/.") {
		return "", fmt.Errorf("href %q is a URL, not a file of the package", href)
	}
	if strings.HasPrefix(href, "/") {
		return "", fmt.Errorf("href %q is an absolute path outside the package", href)
	}
	name, note, ok := cleanName(href)
	if !ok {
		return "", fmt.Errorf("href %q is refused: %s", href, note)
	}
	if name == "" {
		return "", fmt.Errorf("href %q names no file", href)
	}
	return name, nil
}

// ChunkName is the name of chunk i of a file split with ovf:chunkSize:
// the href, a dot and a zero-padded nine-digit index.
func ChunkName(href string, i int) string { return fmt.Sprintf("%s.%09d", href, i) }

// Sibling finds a file a VMDK descriptor names, next to the descriptor in
// the archive. Never a host path: the name is checked and looked up in the
// archive index only.
func (a *Archive) Sibling(from *Member, name string) (*Member, error) {
	rel, err := LocalHref(name)
	if err != nil {
		return nil, err
	}
	m, ok := a.Lookup(path.Join(path.Dir(from.Name), rel))
	if !ok || m.Type != TypeFile {
		return nil, fmt.Errorf("extent %q is not in the archive", name)
	}
	return m, nil
}
