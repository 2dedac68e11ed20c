package ova

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// TestCheckedSpan checks spans against the file's bytes, that a span stays
// valid while readers of other chunks evict and recycle buffers, and that
// files whose reads are not chunk-checked say so rather than answer.
func TestCheckedSpan(t *testing.T) {
	path, disk, _ := writePkg(t, pkg{alg: "SHA256", diskBytes: (recentChunks+4)*ChunkSize + 333})
	o := openPkg(t, path, IntegrityOptions{Mode: VerifyLazy})
	f := o.file1(t, "disk1.vmdk")
	if _, ok, err := f.CheckedSpan(0, 100); ok || err != nil {
		t.Fatalf("a pending file gave a span: %v, %v", ok, err)
	}
	if _, ok, _ := o.file1(t, "app.mf").CheckedSpan(0, 10); ok {
		t.Fatal("the manifest gave a span")
	}
	f.Start()
	f.Wait(context.Background())

	size := int64(len(disk))
	for _, tc := range []struct {
		off int64
		n   int
	}{
		{0, 1}, {0, ChunkSize}, {ChunkSize - 10, 20}, {5, 3*ChunkSize + 7},
		{size - 1, 1}, {size - 100, 1000}, // cut at the end
	} {
		sp, ok, err := f.CheckedSpan(tc.off, tc.n)
		if !ok || err != nil {
			t.Fatalf("CheckedSpan(%d, %d): %v, %v", tc.off, tc.n, ok, err)
		}
		want := disk[tc.off:min(tc.off+int64(tc.n), size)]
		if sp.Len() != len(want) || !bytes.Equal(bytes.Join(sp.Slices, nil), want) {
			t.Fatalf("CheckedSpan(%d, %d): %d bytes, or wrong bytes", tc.off, tc.n, sp.Len())
		}
		sp.Release()
		sp.Release() // a second release does nothing
	}
	if _, ok, _ := f.CheckedSpan(size, 10); ok {
		t.Error("a span past the end")
	}

	// A span held while every chunk of the recent cache is replaced keeps
	// its bytes: its buffers are recycled only once it is released.
	held, _, _ := f.CheckedSpan(ChunkSize/2, ChunkSize)
	buf := make([]byte, 64)
	for c := int64(2); c < recentChunks+4; c++ {
		if _, err := f.ReadAt(buf, c*ChunkSize); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(bytes.Join(held.Slices, nil), disk[ChunkSize/2:ChunkSize/2+ChunkSize]) {
		t.Fatal("a held span changed under eviction")
	}
	held.Release()

	// A chunk damaged on disk: the span fails with the mismatch, and so do
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
	if _, ok, err := f.CheckedSpan(size-10, 10); !ok || !errors.Is(err, ErrMismatch) {
		t.Fatalf("damaged chunk: %v, %v", ok, err)
	}
	if _, ok, err := f.CheckedSpan(0, 10); !ok || !errors.Is(err, ErrMismatch) {
		t.Fatalf("after a mismatch: %v, %v", ok, err)
	}
}
