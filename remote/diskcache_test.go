package remote

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// cacheFiles lists the block files under dir, by block file name.
func cacheFiles(t *testing.T, dir string) map[string]string {
	files := make(map[string]string)
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, diskExt) {
			files[filepath.Base(path)] = path
		}
		return nil
	})
	return files
}

func diskOptions(dir string) Options {
	opt := testOptions()
	opt.CacheDir = dir
	opt.ReadAhead = -1
	return opt
}

// readAll reads the whole file in one-block reads and checks it.
func readAll(t *testing.T, f *File, data []byte) {
	t.Helper()
	for off := 0; off < len(data); off += testBlock {
		readCheck(t, f, data, int64(off), testBlock)
	}
}

// A second File with the same cache directory reads everything from disk:
// Open's request is the only one, and its body is not even read.
func TestDiskCacheServesLaterFile(t *testing.T) {
	data := testData(12*testBlock+100, 70)
	srv := newTestServer(t, data)
	dir := t.TempDir()
	a := mustOpen(t, srv.url(), diskOptions(dir))
	readAll(t, a, data)
	a.Close()
	if n := len(cacheFiles(t, dir)); n != 13 {
		t.Fatalf("%d blocks in the cache, want 13", n)
	}

	b := mustOpen(t, srv.url(), diskOptions(dir))
	readAll(t, b, data)
	st := b.Stats()
	if st.Requests != 1 || st.DiskHits != 13 || st.BytesFetched != 0 {
		t.Errorf("second File: %+v, want only Open's request, 13 disk hits, no body read", st)
	}
}

// A presigned URL signed anew (another query string, the same object)
// finds the blocks the last one fetched.
func TestDiskCacheServesNewSignature(t *testing.T) {
	data := testData(4*testBlock, 78)
	srv := newTestServer(t, data)
	dir := t.TempDir()
	a := mustOpen(t, srv.url()+"?X-Amz-Signature=one", diskOptions(dir))
	readAll(t, a, data)
	a.Close()
	b := mustOpen(t, srv.url()+"?X-Amz-Signature=two", diskOptions(dir))
	readAll(t, b, data)
	if st := b.Stats(); st.Requests != 1 || st.DiskHits != 4 {
		t.Errorf("second signature: %+v, want only Open's request and 4 disk hits", st)
	}
}

// Damaged entries (a flipped bit, a torn file, an entry of another block,
// an empty file as a crash may leave) are detected, never served, and
// fetched again; the fresh copies then serve a third File.
func TestDiskCacheDamagedEntriesAreFetchedAgain(t *testing.T) {
	data := testData(12*testBlock, 71)
	srv := newTestServer(t, data)
	dir := t.TempDir()
	a := mustOpen(t, srv.url(), diskOptions(dir))
	readAll(t, a, data)
	a.Close()

	files := cacheFiles(t, dir)
	name := func(idx int) string { return files[blockName(idx)] }
	flip, _ := os.ReadFile(name(3))
	flip[len(flip)-100] ^= 0x40
	os.WriteFile(name(3), flip, 0o600)
	torn, _ := os.ReadFile(name(5))
	os.WriteFile(name(5), torn[:len(torn)/2], 0o600)
	other, _ := os.ReadFile(name(8))
	os.WriteFile(name(7), other, 0o600)
	os.WriteFile(name(9), nil, 0o600)

	var logs logBuffer
	opt := diskOptions(dir)
	opt.Log = logs.logger()
	b := mustOpen(t, srv.url(), opt)
	readAll(t, b, data)
	if st := b.Stats(); st.DiskCorrupt != 4 || st.Requests != 1+4 {
		t.Errorf("%+v: want 4 damaged entries found and fetched again", st)
	}
	if got := logs.count("disk cache entry damaged"); got != 4 {
		t.Errorf("%d damaged entries logged, want 4", got)
	}
	b.Close()

	c := mustOpen(t, srv.url(), diskOptions(dir))
	readAll(t, c, data)
	if st := c.Stats(); st.Requests != 1 || st.DiskCorrupt != 0 {
		t.Errorf("third File: %+v, want everything from disk", st)
	}
}

// waitStored waits until f's disk cache has recorded block idx.
func waitStored(t *testing.T, f *File, idx int64) {
	t.Helper()
	rel := f.disk.rel(idx)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(time.Millisecond) {
		f.disk.c.mu.Lock()
		_, ok := f.disk.c.index[rel]
		f.disk.c.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatalf("block %d was never stored", idx)
}

func blockName(idx int) string { return fmt.Sprintf("%016x%s", idx, diskExt) }

// The directory stays within its budget, and a later File with a smaller
// budget trims what earlier runs left.
func TestDiskCacheBudget(t *testing.T) {
	data := testData(20*testBlock, 72)
	srv := newTestServer(t, data)
	dir := t.TempDir()
	entry := int64(testBlock + diskHeaderLen)
	opt := diskOptions(dir)
	opt.DiskBudget = 5 * entry
	a := mustOpen(t, srv.url(), opt)
	// One block at a time, each stored before the next is read: a block is
	// stored after its reader has it, so under load a later block's store
	// could otherwise come first and change which blocks are the most
	// recently used.
	for off := 0; off < len(data); off += testBlock {
		readCheck(t, a, data, int64(off), testBlock)
		waitStored(t, a, int64(off/testBlock))
	}
	a.Close() // waits for the last block's write
	if used := dirBytes(t, dir); used > opt.DiskBudget {
		t.Errorf("the cache holds %d bytes, budget %d", used, opt.DiskBudget)
	}
	if n := len(cacheFiles(t, dir)); n != 5 {
		t.Errorf("%d entries, want the 5 the budget holds", n)
	}
	// The most recently used blocks are the ones kept.
	for idx := 15; idx < 20; idx++ {
		if _, ok := cacheFiles(t, dir)[blockName(idx)]; !ok {
			t.Errorf("block %d, among the last read, was evicted", idx)
		}
	}

	opt.DiskBudget = 2 * entry
	b := mustOpen(t, srv.url(), opt)
	if used := dirBytes(t, dir); used > opt.DiskBudget {
		t.Errorf("after opening with a smaller budget: %d bytes, budget %d", used, opt.DiskBudget)
	}
	b.Close()
}

func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	for _, path := range cacheFiles(t, dir) {
		if st, err := os.Stat(path); err == nil {
			n += st.Size()
		}
	}
	return n
}

// A remote file that changed has another validator, so another key: the
// old blocks are never used for it.
func TestDiskCacheKeyedByValidator(t *testing.T) {
	old := testData(6*testBlock, 73)
	srv := newTestServer(t, old)
	dir := t.TempDir()
	a := mustOpen(t, srv.url(), diskOptions(dir))
	readAll(t, a, old)
	a.Close()

	newer := testData(6*testBlock, 74)
	srv.change(newer, `"v2"`, srv.modTime.Add(time.Hour))
	b := mustOpen(t, srv.url(), diskOptions(dir))
	readAll(t, b, newer)
	if st := b.Stats(); st.DiskHits != 0 {
		t.Errorf("%d blocks of the old version came from disk", st.DiskHits)
	}
}

// Without a validator naming exact bytes (none, or only a weak ETag),
// the disk cache is not used, and Open says why.
func TestDiskCacheNeedsStrongValidator(t *testing.T) {
	for _, etag := range []string{"", `W/"weak"`} {
		data := testData(3*testBlock, 75)
		srv := newTestServer(t, data)
		srv.change(data, etag, time.Time{})
		dir := t.TempDir()
		var logs logBuffer
		opt := diskOptions(dir)
		opt.Log = logs.logger()
		f := mustOpen(t, srv.url(), opt)
		readAll(t, f, data)
		if n := len(cacheFiles(t, dir)); n != 0 {
			t.Errorf("ETag %q: %d blocks cached", etag, n)
		}
		if logs.count("disk cache not used") != 1 {
			t.Errorf("ETag %q: no warning:\n%s", etag, logs.String())
		}
	}
}

// Opening a cache removes temporary files a crash left behind, and
// leaves files that are not its own alone.
func TestDiskCacheScanCleansUp(t *testing.T) {
	data := testData(3*testBlock, 76)
	srv := newTestServer(t, data)
	dir := t.TempDir()
	a := mustOpen(t, srv.url(), diskOptions(dir))
	readAll(t, a, data)
	a.Close()
	var sub string
	for _, p := range cacheFiles(t, dir) {
		sub = filepath.Dir(p)
	}
	stale := filepath.Join(sub, diskTmpPrefix+"crashed")
	fresh := filepath.Join(sub, diskTmpPrefix+"being-written")
	mine := filepath.Join(dir, "notes.txt")
	for _, p := range []string{stale, fresh, mine} {
		os.WriteFile(p, []byte("x"), 0o600)
	}
	long := time.Now().Add(-2 * diskTmpStale)
	os.Chtimes(stale, long, long)

	b := mustOpen(t, srv.url(), diskOptions(dir))
	readAll(t, b, data)
	for p, want := range map[string]bool{stale: false, fresh: true, mine: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// Writers racing with eviction (a block evicted while it is still being
// written) leave neither stray files nor a wrong count: what is on disk is
// what the index holds, within the budget.
func TestDiskCacheConcurrentPutsStayInBudget(t *testing.T) {
	dir := t.TempDir()
	const entry = 1000 + diskHeaderLen
	c, err := openDiskCache(dir, 5*entry)
	if err != nil {
		t.Fatal(err)
	}
	defer c.release()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := newDiskBlocks(c, objectKey("http://h/x", "etag", int64(g), 1000))
			for idx := range int64(20) {
				if err := d.put(idx, testData(1000, uint64(idx))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var files []string
	var used int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
			if st, err := os.Stat(path); err == nil {
				used += st.Size()
			}
		}
		return nil
	})
	if used > 5*entry || used != c.usage() || len(files) != len(c.index) {
		t.Errorf("%d files, %d bytes on disk; the index has %d entries, %d bytes; budget %d",
			len(files), used, len(c.index), c.usage(), 5*entry)
	}
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		if _, ok := c.index[rel]; !ok {
			t.Errorf("%s is on disk but not in the index", rel)
		}
	}
}
