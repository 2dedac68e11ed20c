package fs

import (
	"container/list"
	"sync"

	"github.com/ovfmount/ovfmount/guestfs"
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
	mu  sync.Mutex
	max int
	m   map[uint64]*list.Element // of *openFile, by guest inode number
	lru list.List                // most recent at the front
}

type openFile struct {
	ino uint64
	f   guestfs.File
}

func newOpenFiles(max int) *openFiles {
	return &openFiles{max: max, m: map[uint64]*list.Element{}}
}

// open returns the guest file ino of fsys, opening it unless it is kept.
// Two readers that miss at once both open it, and the second one's is
// kept: both are the same file.
func (o *openFiles) open(fsys guestfs.FS, ino uint64) (guestfs.File, error) {
	o.mu.Lock()
	if e := o.m[ino]; e != nil {
		o.lru.MoveToFront(e)
		f := e.Value.(*openFile).f
		o.mu.Unlock()
		return f, nil
	}
	o.mu.Unlock()
	f, err := fsys.Open(ino)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.m[ino]; e != nil {
		e.Value.(*openFile).f = f
		o.lru.MoveToFront(e)
		return f, nil
	}
	o.m[ino] = o.lru.PushFront(&openFile{ino, f})
	for o.lru.Len() > o.max {
		old := o.lru.Back()
		o.lru.Remove(old)
		delete(o.m, old.Value.(*openFile).ino)
	}
	return f, nil
}
