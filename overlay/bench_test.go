package overlay

import (
	"context"
	"math/rand/v2"
	"testing"
)

// The two workloads the lead compares with qemu-io on a QCOW2 overlay
// (qemu-img create -b, 64 KiB clusters): 4 KiB random writes with a sync
// every 64, and 1 MiB sequential writes. The base is never read: every
// write covers whole blocks.

const benchDisk = 1 << 30

func benchDiskOpen(b *testing.B) *Disk {
	s := openTest(b, b.TempDir(), "bench")
	b.Cleanup(func() { s.Close() })
	d, err := s.Disk("d", benchDisk, &patternBase{size: benchDisk})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func BenchmarkRandomWrite4K(b *testing.B) {
	ctx := context.Background()
	d := benchDiskOpen(b)
	p := randBytes(rand.New(rand.NewPCG(1, 2)), BlockSize)
	r := rand.New(rand.NewPCG(3, 4))
	b.SetBytes(BlockSize)
	b.ResetTimer()
	for i := range b.N {
		p[0] = byte(i) | 1
		if err := d.WriteAt(ctx, p, r.Int64N(benchDisk/BlockSize)*BlockSize); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 {
			if err := d.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkSequentialWrite1M(b *testing.B) {
	ctx := context.Background()
	d := benchDiskOpen(b)
	p := randBytes(rand.New(rand.NewPCG(1, 2)), 1<<20)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := range b.N {
		p[0] = byte(i) | 1
		if err := d.WriteAt(ctx, p, int64(i%(benchDisk>>20))<<20); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRandomRead4K(b *testing.B) {
	ctx := context.Background()
	d := benchDiskOpen(b)
	p := randBytes(rand.New(rand.NewPCG(1, 2)), 1<<20)
	for off := int64(0); off < 64<<20; off += 1 << 20 {
		d.WriteAt(ctx, p, off)
	}
	d.Sync()
	r := rand.New(rand.NewPCG(3, 4))
	q := make([]byte, BlockSize)
	b.SetBytes(BlockSize)
	b.ResetTimer()
	for range b.N {
		if err := d.ReadAt(ctx, q, r.Int64N(64<<20/BlockSize)*BlockSize); err != nil {
			b.Fatal(err)
		}
	}
}
