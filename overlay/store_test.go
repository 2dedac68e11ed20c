package overlay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ovl")
	s, err := Open(dir, Identity{Key: "sha256:aaa", Name: "app.ova", Describe: "app.ova (sha256 aaa)"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Identity{Key: "sha256:aaa", Describe: "x"}); !errors.Is(err, ErrBusy) {
		t.Errorf("a second open while the first holds the folder: %v, want ErrBusy", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Identity{Key: "sha256:bbb", Name: "other.ova", Describe: "other.ova (sha256 bbb)"})
	if !errors.Is(err, ErrOtherArchive) {
		t.Fatalf("another archive: %v, want ErrOtherArchive", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "app.ova (sha256 aaa)") || !strings.Contains(msg, "other.ova (sha256 bbb)") {
		t.Errorf("the message does not name both archives: %s", msg)
	}
	_, err = Open(dir, Identity{Key: "sha256:ccc", Name: "app.ova", Describe: "app.ova (sha256 ccc)"})
	if !errors.Is(err, ErrOtherArchive) || !strings.Contains(err.Error(), "changed") ||
		!strings.Contains(err.Error(), "sha256 aaa") || !strings.Contains(err.Error(), "sha256 ccc") {
		t.Errorf("the same archive changed: %v", err)
	}
	s, err = Open(dir, Identity{Key: "sha256:aaa", Describe: "again"})
	if err != nil {
		t.Fatalf("the same archive again: %v", err)
	}
	s.Close()
}

func TestOpenRefusesForeignFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600)
	if _, err := Open(dir, Identity{Key: "k"}); !errors.Is(err, ErrNotOverlay) {
		t.Errorf("a folder with other files: %v, want ErrNotOverlay", err)
	}
	if _, err := ReadStatus(dir); !errors.Is(err, ErrNotOverlay) {
		t.Errorf("status of a folder with other files: %v, want ErrNotOverlay", err)
	}
}

func TestDiskNamesAndSize(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, "k")
	base := &patternBase{size: 1 << 20}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "overlay.json", "overlay.lock"} {
		if _, err := s.Disk(bad, 1<<20, base); err == nil {
			t.Errorf("disk name %q was accepted", bad)
		}
	}
	openDiskT(t, s, "disk1.vmdk", base)
	if _, err := s.Disk("disk1.vmdk", 1<<20, base); err == nil {
		t.Error("a disk was opened twice")
	}
	s.Close()
	s = openTest(t, dir, "k")
	defer s.Close()
	if _, err := s.Disk("disk1.vmdk", 2<<20, base); !errors.Is(err, ErrCorrupt) {
		t.Errorf("reopening with another size: %v, want ErrCorrupt", err)
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Identity{Key: "k1", Describe: "app.ova"})
	if err != nil {
		t.Fatal(err)
	}
	base := &patternBase{size: 10 << 20}
	d := openDiskT(t, s, "disk1.vmdk", base)
	d.WriteAt(ctx, make([]byte, 3*BlockSize), 0) // zeros written as data are stored as zeros
	d.WriteAt(ctx, versionBlock(9, 9), 9*BlockSize)
	d.WriteAt(ctx, versionBlock(10, 9), 10*BlockSize)
	d.Discard(ctx, 1<<20, 1<<20)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.WriteAt(ctx, versionBlock(11, 9), 11*BlockSize) // not synced: status reads commits only
	st, err := ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Describe != "app.ova" || len(st.Disks) != 1 {
		t.Fatalf("status %+v", st)
	}
	ds := st.Disks[0]
	if ds.Name != "disk1.vmdk" || ds.Size != 10<<20 || ds.DataBlocks != 2 || ds.Written != 2*BlockSize ||
		ds.ZeroBlocks != 3+256 || ds.Commits != 1 || ds.LastSync.IsZero() {
		t.Errorf("disk status %+v", ds)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ds := st.Disks[0]; ds.DataBlocks != 3 || ds.Tail != "" {
		t.Errorf("after Close: %+v", ds)
	}
}

// TestExtents checks SEEK_DATA and SEEK_HOLE over overlay data, overlay
// zeros and the base's own holes.
func TestExtents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), "k")
	defer s.Close()
	const size = 64 * BlockSize
	d := openDiskT(t, s, "d", &patternBase{size: size})
	// The base: data in blocks [0, 16) and [32, 48).
	baseExt := func(off int64) (Extent, error) {
		b := off / BlockSize
		lo := b / 16 * 16
		return Extent{lo * BlockSize, 16 * BlockSize, (b/16)%2 == 0}, nil
	}
	d.Discard(ctx, 0, 16*BlockSize)                   // the first data run is gone
	d.WriteAt(ctx, versionBlock(20, 1), 20*BlockSize) // data in the base's hole
	d.Discard(ctx, 40*BlockSize, BlockSize)           // a hole in the second data run
	cases := []struct {
		off, data, hole int64
	}{
		{0, 20, 0}, {100, 20, 0}, {20 * BlockSize, 20, 21}, {21 * BlockSize, 32, 21},
		{32 * BlockSize, 32, 40}, {40 * BlockSize, 41, 40}, {48 * BlockSize, -1, 48},
	}
	for _, c := range cases {
		data, ok, err := d.SeekData(c.off, baseExt)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.data * BlockSize; (c.data < 0 && ok) || (c.data >= 0 && (!ok || data != max(want, c.off))) {
			t.Errorf("SeekData(%d) = %d, %v; want block %d", c.off, data, ok, c.data)
		}
		hole, err := d.SeekHole(c.off, baseExt)
		if err != nil {
			t.Fatal(err)
		}
		if want := max(c.hole*BlockSize, c.off); hole != want {
			t.Errorf("SeekHole(%d) = %d, want %d", c.off, hole, want)
		}
	}
	if _, err := d.Extent(size, baseExt); !errors.Is(err, ErrPastEnd) {
		t.Errorf("an extent at the end: %v", err)
	}
}

// TestDiscardFreesSpace checks that discarded blocks' space is punched
// out of the data file at the next commit, and reused by later writes.
func TestDiscardFreesSpace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, "k")
	defer s.Close()
	d := openDiskT(t, s, "d", &patternBase{size: 8 << 20})
	p := bytes.Repeat([]byte{3}, 4<<20)
	if err := d.WriteAt(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	used := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, "d"+dataExt))
		if err != nil {
			t.Fatal(err)
		}
		return allocatedBytes(fi)
	}
	before := used()
	if err := d.Discard(ctx, 0, 3<<20); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	after := used()
	if after == before {
		t.Skipf("the filesystem did not punch holes (%d bytes before, %d after)", before, after)
	}
	if after > before-(3<<20)+(64<<10) {
		t.Errorf("data file uses %d bytes after discarding 3 MiB of %d", after, before)
	}
	if d.Written() != 1<<20 {
		t.Errorf("Written %d, want 1 MiB", d.Written())
	}
	// Writes reuse the freed slots rather than grow the file.
	if err := d.WriteAt(ctx, p[:2<<20], 4<<20); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "d"+dataExt))
	if fi.Size() > 4<<20 {
		t.Errorf("the data file grew to %d bytes with 3 MiB free in it", fi.Size())
	}
}
