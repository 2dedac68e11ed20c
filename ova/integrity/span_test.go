package integrity

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/ovfmount/ovfmount/route"
)

// routed asks f how n bytes at off are served, with splicing allowed.
func routed(f *File, off int64, n int) (route.Reply, error) {
	return f.Route(context.Background(), make([]byte, n), off, true)
}

// TestRoute checks the one decision per read: a file with nothing to check
// is served from the archive's ranges, a verified one from the buffers its
// chunks were checked in, which stay valid while readers of other chunks
// evict and recycle buffers.
func TestRoute(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", diskBytes: (recentChunks+4)*ChunkSize + 333})
	o := openPkg(t, path, Options{Mode: Lazy})
	f := o.file1(t, "disk1.vmdk")
	if r, err := routed(f, 0, 100); err != nil || r.Ranges == nil {
		t.Fatalf("a pending file is not served from the archive: %+v, %v", r, err)
	}
	if r, err := f.Route(context.Background(), make([]byte, 100), 0, false); err != nil || r.Ranges != nil || !bytes.Equal(r.Bufs[0], disk[:100]) {
		t.Fatalf("without splicing, a pending file's bytes are read: %v", err)
	}
	if r, _ := routed(o.file1(t, "app.mf"), 0, 10); r.Ranges == nil {
		t.Fatal("the manifest is not served from the archive")
	}
	f.Start()
	f.Wait(context.Background())

	size := int64(len(disk))
	for _, tc := range []struct {
		off int64
		n   int
	}{
		{0, 1}, {0, ChunkSize}, {ChunkSize - 10, 20}, {5, 3*ChunkSize + 7}, {size - 1, 1}, {size - 100, 100},
	} {
		r, err := routed(f, tc.off, tc.n)
		if err != nil || r.Ranges != nil {
			t.Fatalf("Route(%d, %d) of a verified file: %v, %d ranges", tc.off, tc.n, err, len(r.Ranges))
		}
		want := disk[tc.off : tc.off+int64(tc.n)]
		if r.Len() != len(want) || !bytes.Equal(bytes.Join(r.Bufs, nil), want) {
			t.Fatalf("Route(%d, %d): %d bytes, or wrong bytes", tc.off, tc.n, r.Len())
		}
		r.Release()
		r.Release() // a second release does nothing
	}

	// Buffers held while every chunk of the recent cache is replaced keep
	// their bytes: they are recycled only once released.
	held, _ := routed(f, ChunkSize/2, ChunkSize)
	buf := make([]byte, 64)
	for c := int64(2); c < recentChunks+4; c++ {
		if _, err := f.ReadAt(buf, c*ChunkSize); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(bytes.Join(held.Bufs, nil), disk[ChunkSize/2:ChunkSize/2+ChunkSize]) {
		t.Fatal("held buffers changed under eviction")
	}
	held.Release()

	// A chunk damaged on disk: the read fails with the mismatch, and so do
	// later ones.
	w, _ := os.OpenFile(path, os.O_WRONLY, 0)
	m, _ := o.a.Lookup("disk1.vmdk")
	_, phys, _ := m.Contiguous()
	w.WriteAt([]byte{^disk[size-5]}, phys+size-5)
	w.Close()
	last := int((size - 1) / ChunkSize)
	recent.mu.Lock()
	delete(recent.entries, chunkKey{f, last}) // as if its second had passed
	recent.mu.Unlock()
	if _, err := routed(f, size-10, 10); !errors.Is(err, ErrMismatch) {
		t.Fatalf("damaged chunk: %v", err)
	}
	if _, err := routed(f, 0, 10); !errors.Is(err, ErrMismatch) {
		t.Fatalf("after a mismatch: %v", err)
	}
}
