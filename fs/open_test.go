package fs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ovfmount/ovfmount/appliance"
)

// openCounting counts how often the mount tells a content it is in use.
type openCounting struct {
	*readerContent
	opened atomic.Int32
}

func (c *openCounting) Opened() { c.opened.Add(1) }

// TestReadsWithoutOpen: after the first OPEN is answered ENOSYS the kernel
// opens files without asking, and nodes serve their reads alone; every
// file read is still told it is in use (lazy verification starts there),
// once, and writing is still refused.
func TestReadsWithoutOpen(t *testing.T) {
	data := map[string][]byte{"a": randomBytes(10000, 1), "b": randomBytes(200000, 2), "c": randomBytes(1, 3)}
	counts := map[string]*openCounting{}
	entries := []*appliance.Entry{{Path: "", Type: appliance.Dir, Perm: 0o755}}
	for _, name := range []string{"a", "b", "c"} {
		c := &openCounting{readerContent: &readerContent{r: bytes.NewReader(data[name]), size: int64(len(data[name]))}}
		counts[name] = c
		entries = withFile(entries, name, c)
	}
	mnt := testMount(t, entries)
	for range 2 {
		for _, name := range []string{"a", "b", "c"} {
			got, err := os.ReadFile(filepath.Join(mnt, name))
			if err != nil || !bytes.Equal(got, data[name]) {
				t.Fatalf("%s: %d bytes, %v", name, len(got), err)
			}
		}
	}
	for name, c := range counts {
		if n := c.opened.Load(); n != 1 {
			t.Errorf("%s: told it was in use %d times, want once", name, n)
		}
	}
	if _, err := os.OpenFile(filepath.Join(mnt, "a"), os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("open for writing: %v, want EROFS", err)
	}
}
