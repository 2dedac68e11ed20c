package remote

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The disk cache keeps fetched blocks across mounts. Each block is a file
//
//	CacheDir/<object key>/<block index, 16 hex digits>.blk
//
// holding a header (magic, object key, block index, length, CRC-32C of
// the data) and the data. The object key is a hash of the URL (without
// userinfo or query string, as File.Identity has it), the
// validator the server gave (strong ETag, else Last-Modified), the size and
// the block size, so a remote file that changed, or a different block size,
// never finds the old blocks. A file is written under a temporary name and
// renamed into place, so a reader sees a whole entry or none; it is not
// fsynced, because after a crash a torn entry fails its length or checksum
// check and is fetched again, which costs less than an fsync per block.
//
// The package owns CacheDir's *.blk files and .tmp-* files and may delete
// them; it never touches other files there.

const (
	diskMagic     = "OVFMBLK1"
	diskHeaderLen = 8 + sha256.Size + 8 + 4 + 4
	diskExt       = ".blk"
	diskTmpPrefix = ".tmp-"
	// A temporary file this old is left over from a crash, not being
	// written by another process at this moment.
	diskTmpStale = time.Hour
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// diskCache is one cache directory with its budget. Every File of this
// process that names the same directory shares one, so together they stay
// within the budget (the smallest any of them asked for). Another process
// using the same directory is seen only when a cache opens it: budgets are
// kept per process.
type diskCache struct {
	dir string

	mu     sync.Mutex
	budget int64
	used   int64
	lru    list.List                // of *diskEntry, most recently used first
	index  map[string]*list.Element // by path relative to dir
	refs   int
}

type diskEntry struct {
	rel  string
	size int64
}

var diskCaches = struct {
	sync.Mutex
	m map[string]*diskCache
}{m: make(map[string]*diskCache)}

// openDiskCache returns the shared cache for dir, scanning the directory
// the first time so that entries left by earlier runs count against the
// budget.
func openDiskCache(dir string, budget int64) (*diskCache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	diskCaches.Lock()
	defer diskCaches.Unlock()
	if c, ok := diskCaches.m[abs]; ok {
		c.mu.Lock()
		c.refs++
		if budget < c.budget {
			c.budget = budget
			c.evictLocked(0)
		}
		c.mu.Unlock()
		return c, nil
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	c := &diskCache{dir: abs, budget: budget, index: make(map[string]*list.Element), refs: 1}
	if err := c.scan(); err != nil {
		return nil, err
	}
	diskCaches.m[abs] = c
	return c, nil
}

// release drops one File's hold on the cache.
func (c *diskCache) release() {
	diskCaches.Lock()
	defer diskCaches.Unlock()
	c.mu.Lock()
	c.refs--
	last := c.refs == 0
	c.mu.Unlock()
	if last {
		delete(diskCaches.m, c.dir)
	}
}

// scan indexes the entries already in the directory, oldest use first (a
// hit refreshes an entry's mtime), and removes stale temporary files.
func (c *diskCache) scan() error {
	type found struct {
		rel   string
		size  int64
		mtime time.Time
	}
	var all []found
	now := time.Now()
	subs, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if !sub.IsDir() || !isObjectKey(sub.Name()) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(c.dir, sub.Name()))
		if err != nil {
			continue
		}
		for _, de := range files {
			info, err := de.Info()
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
			rel := filepath.Join(sub.Name(), de.Name())
			switch {
			case strings.HasPrefix(de.Name(), diskTmpPrefix):
				if now.Sub(info.ModTime()) > diskTmpStale {
					os.Remove(filepath.Join(c.dir, rel))
				}
			case strings.HasSuffix(de.Name(), diskExt):
				all = append(all, found{rel, info.Size(), info.ModTime()})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mtime.Before(all[j].mtime) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range all {
		c.index[e.rel] = c.lru.PushFront(&diskEntry{e.rel, e.size})
		c.used += e.size
	}
	c.evictLocked(0)
	return nil
}

func isObjectKey(name string) bool {
	if len(name) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// evictLocked removes least recently used entries until need more bytes
// fit in the budget.
func (c *diskCache) evictLocked(need int64) {
	for c.used+need > c.budget && c.lru.Len() > 0 {
		e := c.lru.Remove(c.lru.Back()).(*diskEntry)
		delete(c.index, e.rel)
		c.used -= e.size
		os.Remove(filepath.Join(c.dir, e.rel))
	}
}

// reserve makes room for an entry of size bytes at rel and records it,
// returning its place in the LRU for commit. It returns nil if the entry
// is already there (or being written) or can never fit.
func (c *diskCache) reserve(rel string, size int64) *list.Element {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.index[rel]; ok || size > c.budget {
		return nil
	}
	c.evictLocked(size)
	e := c.lru.PushFront(&diskEntry{rel, size})
	c.index[rel] = e
	c.used += size
	return e
}

// commit renames a written temporary file into place as the entry
// reserved at e, unless e was evicted meanwhile: renaming it then would
// leave a file the budget no longer counts.
func (c *diskCache) commit(rel string, e *list.Element, tmp string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index[rel] != e {
		os.Remove(tmp)
		return nil
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, rel)); err != nil {
		os.Remove(tmp)
		c.dropLocked(rel, e)
		return err
	}
	return nil
}

// drop gives up the reservation at e, if it is still there.
func (c *diskCache) drop(rel string, e *list.Element) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index[rel] == e {
		c.dropLocked(rel, e)
	}
}

func (c *diskCache) dropLocked(rel string, e *list.Element) {
	c.lru.Remove(e)
	delete(c.index, rel)
	c.used -= e.Value.(*diskEntry).size
}

// touch marks rel used, recording it if another process wrote it.
func (c *diskCache) touch(rel string, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.index[rel]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.evictLocked(size)
	c.index[rel] = c.lru.PushFront(&diskEntry{rel, size})
	c.used += size
}

// forget drops rel from the index and removes its file.
func (c *diskCache) forget(rel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.index[rel]; ok {
		c.dropLocked(rel, e)
	}
	os.Remove(filepath.Join(c.dir, rel))
}

func (c *diskCache) usage() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// diskBlocks is one remote file's view of a disk cache.
type diskBlocks struct {
	c   *diskCache
	key [sha256.Size]byte
	sub string // hex of key: the object's directory
}

// objectKey binds cache entries to one version of one remote file read
// with one block size.
func objectKey(rawURL, validator string, size, blockSize int64) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{"ovfmount remote block cache v1", rawURL, validator,
		strconv.FormatInt(size, 10), strconv.FormatInt(blockSize, 10)} {
		io.WriteString(h, s)
		h.Write([]byte{0})
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func newDiskBlocks(c *diskCache, key [sha256.Size]byte) *diskBlocks {
	return &diskBlocks{c: c, key: key, sub: hex.EncodeToString(key[:])}
}

func (d *diskBlocks) rel(idx int64) string {
	return filepath.Join(d.sub, fmt.Sprintf("%016x%s", idx, diskExt))
}

// errCorrupt is a cache entry that is not what it should be: torn by a
// crash, damaged on disk, or put there by someone else.
var errCorrupt = errors.New("corrupt cache entry")

// get returns block idx, which must be n bytes long, or nil if the cache
// does not hold it. An entry that fails any check is removed and reported
// with errCorrupt; the caller fetches the block instead.
func (d *diskBlocks) get(idx int64, n int) ([]byte, error) {
	rel := d.rel(idx)
	path := filepath.Join(d.c.dir, rel)
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := d.readEntry(fh, idx, n)
	fh.Close()
	if err != nil {
		if errors.Is(err, errCorrupt) {
			d.c.forget(rel)
		}
		return nil, err
	}
	now := time.Now()
	os.Chtimes(path, now, now) // the next scan orders entries by last use
	d.c.touch(rel, int64(diskHeaderLen+n))
	return data, nil
}

func (d *diskBlocks) readEntry(fh *os.File, idx int64, n int) ([]byte, error) {
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != int64(diskHeaderLen+n) {
		return nil, fmt.Errorf("%w: %d bytes, want %d", errCorrupt, st.Size(), diskHeaderLen+n)
	}
	var hdr [diskHeaderLen]byte
	if _, err := io.ReadFull(fh, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	p := hdr[:]
	magic, key := p[:8], p[8:8+sha256.Size]
	p = p[8+sha256.Size:]
	gotIdx := binary.BigEndian.Uint64(p[0:8])
	gotLen := binary.BigEndian.Uint32(p[8:12])
	sum := binary.BigEndian.Uint32(p[12:16])
	if string(magic) != diskMagic || !bytes.Equal(key, d.key[:]) || gotIdx != uint64(idx) || gotLen != uint32(n) {
		return nil, fmt.Errorf("%w: header does not match block %d", errCorrupt, idx)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(fh, data); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if crc32.Checksum(data, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	return data, nil
}

// put stores block idx. A failure leaves no entry behind.
func (d *diskBlocks) put(idx int64, data []byte) error {
	rel := d.rel(idx)
	e := d.c.reserve(rel, int64(diskHeaderLen+len(data)))
	if e == nil {
		return nil
	}
	tmp, err := d.writeTemp(idx, data)
	if err != nil {
		d.c.drop(rel, e)
		return err
	}
	return d.c.commit(rel, e, tmp)
}

// writeTemp writes an entry to a new temporary file beside its final
// place, and returns the file's name.
func (d *diskBlocks) writeTemp(idx int64, data []byte) (string, error) {
	dir := filepath.Join(d.c.dir, d.sub)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, diskTmpPrefix+"*")
	if err != nil {
		return "", err
	}
	var hdr [diskHeaderLen]byte
	copy(hdr[:8], diskMagic)
	copy(hdr[8:], d.key[:])
	p := hdr[8+sha256.Size:]
	binary.BigEndian.PutUint64(p[0:8], uint64(idx))
	binary.BigEndian.PutUint32(p[8:12], uint32(len(data)))
	binary.BigEndian.PutUint32(p[12:16], crc32.Checksum(data, castagnoli))
	_, err = tmp.Write(hdr[:])
	if err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}
