package diskhash

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/zeebo/blake3"
)

// memSource is a device in memory with an allocation map: holes hold
// zeros, and reads that touch only holes are counted, since the engine
// must hash those from its zero buffer instead.
type memSource struct {
	data []byte
	runs []run // in order, covering data
	// bad makes reads touching [bad.Off, bad.Off+bad.Len) fail.
	bad Range

	mu        sync.Mutex
	holeReads int
	reads     int
}

type run struct {
	n    int64
	data bool
}

func (m *memSource) Size() int64 { return int64(len(m.data)) }

func (m *memSource) ReadAt(_ context.Context, p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		return fmt.Errorf("read [%d, +%d) outside %d", off, len(p), len(m.data))
	}
	if overlaps(m.bad, off, int64(len(p))) {
		return errors.New("damaged")
	}
	m.mu.Lock()
	m.reads++
	if m.onlyHoles(off, int64(len(p))) {
		m.holeReads++
	}
	m.mu.Unlock()
	copy(p, m.data[off:])
	return nil
}

func (m *memSource) onlyHoles(off, n int64) bool {
	at := int64(0)
	for _, r := range m.runs {
		if r.data && off < at+r.n && at < off+n {
			return false
		}
		at += r.n
	}
	return true
}

func (m *memSource) Runs(off, end int64, fn func(int64, bool) bool) error {
	at := int64(0)
	for _, r := range m.runs {
		a, b := max(at, off), min(at+r.n, end)
		at += r.n
		if a >= b {
			continue
		}
		if !fn(b-a, r.data) {
			return nil
		}
	}
	return nil
}

// randomSource is size bytes of random data runs and zero holes, runs of
// every scale: a few bytes, around the coalescing threshold, several
// blocks.
func randomSource(rng *rand.Rand, size int64) *memSource {
	m := &memSource{data: make([]byte, size)}
	scales := []int64{1, 4096, coalesceHole - 1, coalesceHole, 3 * BlockSize / 2}
	for at := int64(0); at < size; {
		n := min(size-at, 1+rng.Int64N(scales[rng.IntN(len(scales))]*2))
		data := rng.IntN(2) == 0
		if data {
			for i := at; i < at+n; i++ {
				m.data[i] = byte(rng.Uint32())
			}
		}
		m.runs = append(m.runs, run{n, data})
		at += n
	}
	return m
}

// oracle is each algorithm's digest of b, by the standard libraries.
func oracle(b []byte) [][]byte {
	m, s1, s2, b3 := md5.Sum(b), sha1.Sum(b), sha256.Sum256(b), blake3.Sum256(b)
	return [][]byte{m[:], s1[:], s2[:], b3[:]}
}

func TestHashMatchesFlattenedBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i, size := range []int64{0, 1, 4095, 3*BlockSize + 12345, 9 * BlockSize} {
		src := randomSource(rng, size)
		ranges := []Range{{0, size}}
		for range 4 {
			off := rng.Int64N(size + 1)
			ranges = append(ranges, Range{off, rng.Int64N(size - off + 1)})
		}
		var passed int64
		res := Hash(context.Background(), src, Algorithms, ranges, func(n int64) { passed += n })
		for j, r := range res {
			if r.Err != nil {
				t.Fatalf("source %d range %d: %v", i, j, r.Err)
			}
			want := oracle(src.data[r.Off : r.Off+r.Len])
			for k, a := range Algorithms {
				if !bytes.Equal(r.Sums[k], want[k]) {
					t.Errorf("source %d (%d bytes) range %d [%d, +%d) %s: %x, want %x", i, size, j, r.Off, r.Len, a, r.Sums[k], want[k])
				}
			}
		}
		if passed != size {
			t.Errorf("source %d: progress reported %d bytes of %d", i, passed, size)
		}
		if src.holeReads != 0 {
			t.Errorf("source %d: %d reads touched only holes", i, src.holeReads)
		}
	}
}

func TestHashOneAlgorithmAndNoHoles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	src := randomSource(rng, 2*BlockSize+7)
	src.runs = []run{{src.Size(), true}}
	res := Hash(context.Background(), src, []Algorithm{SHA256}, []Range{{0, src.Size()}}, nil)
	if want := sha256.Sum256(src.data); res[0].Err != nil || !bytes.Equal(res[0].Sums[0], want[:]) {
		t.Fatalf("got %x %v, want %x", res[0].Sums, res[0].Err, want)
	}
	if src.reads != 3 {
		t.Errorf("%d reads of a device of 2 blocks and 7 bytes, want 3", src.reads)
	}
}

// A read that fails fails the ranges it touches, and only those: a
// partition beside a damaged one still gets its digests, and no range gets
// a digest of part of its bytes.
func TestHashReadErrorFailsOnlyWhatItTouches(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	size := int64(6 * BlockSize)
	src := randomSource(rng, size)
	src.runs = []run{{size, true}}
	src.bad = Range{4*BlockSize + 10, 1}
	ranges := []Range{{0, size}, {0, 2 * BlockSize}, {4 * BlockSize, BlockSize}, {5 * BlockSize, BlockSize}}
	res := Hash(context.Background(), src, Algorithms, ranges, nil)
	for i, wantErr := range []bool{true, false, true, false} {
		r := res[i]
		if (r.Err != nil) != wantErr {
			t.Errorf("range %d: err %v, want an error: %v", i, r.Err, wantErr)
		}
		if r.Err != nil && r.Sums != nil {
			t.Errorf("range %d: digests with an error", i)
		}
		if r.Err == nil && !bytes.Equal(r.Sums[2], oracle(src.data[r.Off : r.Off+r.Len])[2]) {
			t.Errorf("range %d: wrong digest", i)
		}
		if r.Err != nil && !strings.Contains(r.Err.Error(), "damaged") {
			t.Errorf("range %d: %v does not say why", i, r.Err)
		}
	}
}

func TestHashRejectsRangesOutside(t *testing.T) {
	src := &memSource{data: make([]byte, 100), runs: []run{{100, false}}}
	res := Hash(context.Background(), src, []Algorithm{MD5}, []Range{{90, 11}, {-1, 5}, {0, 100}}, nil)
	if res[0].Err == nil || res[1].Err == nil {
		t.Errorf("ranges outside the device: %v, %v", res[0].Err, res[1].Err)
	}
	if want := md5.Sum(make([]byte, 100)); res[2].Err != nil || !bytes.Equal(res[2].Sums[0], want[:]) {
		t.Errorf("whole device: %x %v", res[2].Sums, res[2].Err)
	}
}

func TestHashInterrupted(t *testing.T) {
	src := randomSource(rand.New(rand.NewPCG(7, 8)), 4*BlockSize)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Hash(ctx, src, Algorithms, []Range{{0, src.Size()}}, nil)
	if !errors.Is(res[0].Err, context.Canceled) || res[0].Sums != nil {
		t.Fatalf("interrupted: %x %v", res[0].Sums, res[0].Err)
	}
}

// badMap is a hostile allocation map: it reports a run of nothing, or
// stops short of the end.
type badMap struct {
	memSource
	empty bool
}

func (b *badMap) Runs(off, end int64, fn func(int64, bool) bool) error {
	if b.empty {
		fn(0, true)
		return nil
	}
	fn((end-off)/2, true)
	return nil
}

func TestHashHostileMap(t *testing.T) {
	for _, empty := range []bool{true, false} {
		src := &badMap{memSource: memSource{data: make([]byte, 1000)}, empty: empty}
		res := Hash(context.Background(), src, []Algorithm{SHA1}, []Range{{0, 1000}}, nil)
		if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "allocation map") {
			t.Errorf("empty run %v: %v", empty, res[0].Err)
		}
	}
}

func TestParseAlgorithms(t *testing.T) {
	got, err := ParseAlgorithms(" SHA256,md5,sha256 ")
	if err != nil || fmt.Sprint(got) != "[md5 sha256]" {
		t.Errorf("got %v %v", got, err)
	}
	for _, bad := range []string{"sha512", "", ",", "md5,crc32"} {
		if _, err := ParseAlgorithms(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
