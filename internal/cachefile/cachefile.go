// Package cachefile keeps what a later run may reuse (trusted chunk
// tables, gzip seek indexes) in files named after the archive they belong
// to, written so that a crash or an interrupt never leaves half a file.
package cachefile

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
)

// Path names a cache file of the given kind ("chunks", "gzindex") after
// the archive's identity and, when the file is about one file of the
// archive, that file's name. It is "" when dir is "" (nothing is kept).
func Path(dir, kind string, identity []byte, file string) string {
	if dir == "" || identity == nil {
		return ""
	}
	h := sha256.New()
	h.Write(identity)
	h.Write([]byte(file))
	return filepath.Join(dir, fmt.Sprintf("%s-%x.bin", kind, h.Sum(nil)[:16]))
}

// Write writes b to path atomically: a crash leaves the old file or the
// new one, never half of one. The folder is private to the user, like
// the rest of a cache.
func Write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
