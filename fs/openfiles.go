package fs

import (
	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/lru"
)

// openFilesKept is how many guest files a tree keeps open: more than the
// kernel reads at once (its read-ahead of a few files, and a few readers),
// so that a file read in many requests is opened once, while 50,000 files
// read one after the other cost the memory of 64.
const openFilesKept = 64

// openFiles keeps the guest files read lately open, least recently used
// first out. The kernel reads a file without opening it on this mount (see
// openReply), so a read finds the file here; opening it is parsing its
// inode and block map, which a large file read in 1 MiB requests would
// otherwise repeat for each request. A guest file holds no resources but
// memory, so dropping one closes it.
type openFiles struct {
	c *lru.Cache[uint64, guestfs.File]
}

func newOpenFiles(max int) openFiles { return openFiles{lru.New[uint64, guestfs.File](max)} }

// open returns the guest file ino of fsys, opening it unless it is kept.
// Two readers that miss at once both open it, and the second one's is
// kept: both are the same file.
func (o openFiles) open(fsys guestfs.FS, ino uint64) (guestfs.File, error) {
	if f, ok := o.c.Get(ino); ok {
		return f, nil
	}
	f, err := fsys.Open(ino)
	if err != nil {
		return nil, err
	}
	o.c.Put(ino, f, 1)
	return f, nil
}
