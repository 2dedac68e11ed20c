package remote

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDiskEntry reads arbitrary bytes as a cache entry of block 3 (4 KiB
// long): it must be refused as corrupt and removed, or be exactly the
// entry put would write, never anything in between.
func FuzzDiskEntry(f *testing.F) {
	dir := f.TempDir()
	c, err := openDiskCache(dir, 1<<30)
	if err != nil {
		f.Fatal(err)
	}
	d := newDiskBlocks(c, objectKey("http://h/a.ova", `etag "x"`, 1<<20, 4096))
	good := bytes.Repeat([]byte("block"), 820)[:4096]
	if err := d.put(3, good); err != nil {
		f.Fatal(err)
	}
	entry, err := os.ReadFile(filepath.Join(dir, d.rel(3)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(entry)
	f.Add(entry[:len(entry)-1])
	bad := bytes.Clone(entry)
	bad[len(bad)-1] ^= 1
	f.Add(bad)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, d.rel(3))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c.touch(d.rel(3), int64(len(b)))
		data, err := d.get(3, len(good))
		switch {
		case err != nil:
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("unclassified error %v", err)
			}
			if _, serr := os.Stat(path); serr == nil {
				t.Fatal("a corrupt entry was left in place")
			}
		case !bytes.Equal(b, entry):
			t.Fatalf("accepted an entry that put did not write: %d bytes", len(b))
		case !bytes.Equal(data, good):
			t.Fatal("returned other bytes than were put")
		}
	})
}
