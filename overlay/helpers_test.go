package overlay

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// patternBase is a deterministic base: byte i is a hash of i, so any
// misplaced byte shows. It counts its reads.
type patternBase struct {
	size  int64
	reads atomic.Int64
}

func baseByte(i int64) byte {
	x := uint64(i)*0x9e3779b97f4a7c15 + 0x1234
	x ^= x >> 29
	return byte(x)
}

func (b *patternBase) ReadAt(ctx context.Context, p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > b.size {
		return fmt.Errorf("base read of %d at %d past %d", len(p), off, b.size)
	}
	b.reads.Add(1)
	for i := range p {
		p[i] = baseByte(off + int64(i))
	}
	return nil
}

func (b *patternBase) bytes() []byte {
	p := make([]byte, b.size)
	b.ReadAt(context.Background(), p, 0)
	return p
}

func openTest(t testing.TB, dir string, key string) *Store {
	t.Helper()
	s, err := Open(dir, Identity{Key: key, Describe: "archive " + key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openDiskT(t testing.TB, s *Store, name string, base *patternBase) *Disk {
	t.Helper()
	d, err := s.Disk(name, base.size, base)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkAll compares the whole view with want, reporting the first
// differing block.
func checkAll(t testing.TB, d *Disk, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if err := d.ReadAt(context.Background(), got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("byte %d (block %d) is %#x, want %#x", i, i/BlockSize, got[i], want[i])
			}
		}
	}
}

// versionBlock is the content of block b written as version v: every
// 8 bytes say (b, v), so a block holding two versions shows it.
func versionBlock(b, v uint64) []byte {
	p := make([]byte, BlockSize)
	for i := 0; i < BlockSize; i += 16 {
		binary.LittleEndian.PutUint64(p[i:], b)
		binary.LittleEndian.PutUint64(p[i+8:], v)
	}
	return p
}

func randBytes(r *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}
