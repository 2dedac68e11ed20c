package integrity

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
	mrand "math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time the process has used: on a shared machine the
// CPU time per read is steadier than the wall time, and it counts the work
// done off the reader's goroutine (check-ahead) too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timed runs the benchmark's loop, reporting its CPU time per op besides.
func timed(b *testing.B, loop func()) {
	b.ResetTimer()
	start := cpuTime()
	loop()
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// benchSize is the disk of the read benchmarks: far more chunks than the
// recent-chunk cache holds, so random reads mostly miss it.
const benchSize = 256 << 20

// BenchmarkRandomRead4K: checked 4 KiB reads of a verified file at random
// 4 KiB-aligned offsets, as a disk decoder reading grains asks for them.
func BenchmarkRandomRead4K(b *testing.B) {
	f, _, _, _ := verifiedPkg(b, benchSize)
	rng := mrand.New(mrand.NewSource(1))
	p := make([]byte, 4096)
	b.SetBytes(int64(len(p)))
	timed(b, func() {
		for range b.N {
			off := rng.Int63n(benchSize/4096) * 4096
			if _, err := f.ReadAt(p, off); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSequentialRead1M: checked 1 MiB reads of a verified file, one
// after another from its start (wrapping round), served as held buffers
// the way the FUSE layer takes them.
func BenchmarkSequentialRead1M(b *testing.B) {
	f, _, _, _ := verifiedPkg(b, benchSize)
	p := make([]byte, 1<<20)
	b.SetBytes(int64(len(p)))
	off := int64(0)
	timed(b, func() {
		for range b.N {
			r, err := f.Route(context.Background(), p, off, false)
			if err != nil {
				b.Fatal(err)
			}
			r.Release()
			if off += int64(len(p)); off+int64(len(p)) > benchSize {
				off = 0
			}
		}
	})
}

// nullHash stands in for the manifest hash, to time the table stage alone.
type nullHash struct{}

func (nullHash) Write(p []byte) (int, error) { return len(p), nil }
func (nullHash) Sum(b []byte) []byte         { return b }
func (nullHash) Reset()                      {}
func (nullHash) Size() int                   { return 0 }
func (nullHash) BlockSize() int              { return 64 }

// newBenchPass is a pass over r with h as the manifest hash.
func newBenchPass(r io.ReaderAt, size int64, h hash.Hash) *hashPass {
	return &hashPass{ctx: context.Background(), r: r, size: size, h: h, pieces: make([]pieceDigest, pieceCount(size))}
}

// BenchmarkHashPass: the verification pass over a 512 MiB file in the page
// cache, under a SHA-256 manifest and with the manifest hash stubbed out
// (the table's digests and the reads alone).
func BenchmarkHashPass(b *testing.B) {
	const size = 512 << 20
	path := filepath.Join(b.TempDir(), "disk")
	data := make([]byte, size)
	mrand.New(mrand.NewSource(1)).Read(data)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	data = nil
	r, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		name string
		h    func() hash.Hash
	}{{"sha256", sha256.New}, {"table-only", func() hash.Hash { return nullHash{} }}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(size)
			timed(b, func() {
				for range b.N {
					p := newBenchPass(r, size, tc.h())
					if err := p.run(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
