package vdisk

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// proven is a source whose bytes are proven (route.Prover), as a verified
// archive member's are.
type proven struct{ io.ReaderAt }

func (proven) Proven() bool { return true }

var (
	benchOnce sync.Once
	benchVMDK []byte
)

// BenchmarkReadVMDK reads a streamOptimized VMDK of a 64 MiB disk (24 MiB
// of real files) made by qemu-img: sequentially in 128 KiB reads (whole
// grains, decoded straight into the reply), and in 4 KiB reads at random
// offsets by 1 and 4 readers, from a plain source and a proven one (which
// may serve a read from a decode of the grain's head). The cache is small,
// so random reads mostly miss.
func BenchmarkReadVMDK(b *testing.B) {
	testutil.RequireTool(b, "qemu-img")
	benchOnce.Do(func() {
		disk := testutil.PartitionedDisk(b, 64<<20, 24<<20)
		dir, _ := os.MkdirTemp("", "bench")
		defer os.RemoveAll(dir)
		v := testutil.Convert(b, dir, disk, "vmdk", "subformat=streamOptimized")
		benchVMDK, _ = os.ReadFile(v)
	})
	for _, src := range []struct {
		name string
		r    io.ReaderAt
	}{{"plain", bytes.NewReader(benchVMDK)}, {"proven", proven{bytes.NewReader(benchVMDK)}}} {
		open := func(b *testing.B) (Image, *Cache) {
			c := NewCache(2<<20, 0)
			im, err := Open(src.r, int64(len(benchVMDK)), Options{Cache: c})
			if err != nil {
				b.Fatal(err)
			}
			return im, c
		}
		b.Run(src.name+"/sequential-128K", func(b *testing.B) {
			im, c := open(b)
			defer c.Close()
			buf := make([]byte, 128<<10)
			b.SetBytes(im.Size())
			for b.Loop() {
				for off := int64(0); off < im.Size(); off += int64(len(buf)) {
					if _, err := im.ReadAt(buf, off); err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
			}
		})
		for _, readers := range []int{1, 4} {
			b.Run(src.name+"/random-4K-readers-"+string(rune('0'+readers)), func(b *testing.B) {
				im, c := open(b)
				defer c.Close()
				// Offsets in the 24 MiB of data, so most grains hold some.
				span := int64(24<<20) / 4096
				var mu sync.Mutex
				rng := rand.New(rand.NewSource(1))
				b.SetParallelism(readers)
				b.ResetTimer()
				var wg sync.WaitGroup
				n := b.N
				per := (n + readers - 1) / readers
				for range readers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						buf := make([]byte, 4096)
						for range per {
							mu.Lock()
							off := (1<<20)/4096 + rng.Int63n(span)
							mu.Unlock()
							if _, err := im.ReadAt(buf, off*4096); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				p, f := c.PrefixStats()
				b.ReportMetric(float64(p)/float64(readers*per), "prefix/op")
				b.ReportMetric(float64(f)/float64(readers*per), "finished/op")
			})
		}
	}
}
