package s3

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ovfmount/ovfmount/remote"
)

// An object replaced while it is open fails the reads with
// remote.ErrChanged, whether the new version has the same size or not:
// the read that finds out, every later one, of blocks cached before or
// fetched after, and never a byte of the new version.
func TestReplacedObjectFailsReads(t *testing.T) {
	s := startS3(t)
	const size = 1 << 20
	old := testData(size, 10)
	for _, tc := range []struct {
		name string
		new  []byte
	}{
		{"same size", testData(size, 11)},
		{"other size", testData(size+remote.MinBlockSize, 12)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "replaced-" + tc.name + ".ova"
			put(t, s, key, old)
			opt := testOptions(s.Endpoint)
			opt.ReadAhead = -1 // so that the blocks after 0-1 are fetched after the change
			f := mustOpen(t, "s3://"+testBucket+"/"+key, opt)
			readCheck(t, f, old, 0, 2*remote.MinBlockSize)

			put(t, s, key, tc.new)
			for i, off := range []int64{4 * remote.MinBlockSize, 0, 8 * remote.MinBlockSize, size - 100} {
				p := make([]byte, 100)
				n, err := f.ReadAt(p, off)
				if !errors.Is(err, remote.ErrChanged) {
					t.Fatalf("read %d at %d after the change: %d bytes, %v; want ErrChanged", i, off, n, err)
				}
				if n > 0 && !bytes.Equal(p[:n], old[off:off+int64(n)]) {
					t.Fatalf("read %d at %d returned bytes that are not the opened version's", i, off)
				}
				if i == 0 {
					t.Logf("%v", err)
				}
			}
		})
	}
}

// Reads racing with the replacement return the old bytes or fail: never
// a mix, even from many readers of blocks fetched in parallel.
func TestReplacedObjectNeverMixes(t *testing.T) {
	s := startS3(t)
	const size = 2 << 20
	old, next := testData(size, 13), testData(size, 14)
	put(t, s, "race.ova", old)
	opt := testOptions(s.Endpoint)
	// Without read-ahead, block 3 is fetched by no reader (each reads
	// 1.5 blocks every 6), so the read of it after the change must go to
	// the server and find the change. With read-ahead, the readers could
	// have cached the whole object before the change, and a read of any
	// block would rightly return the opened version's bytes.
	opt.ReadAhead = -1
	f := mustOpen(t, "s3://"+testBucket+"/race.ova", opt)
	done := make(chan error, 4)
	for r := range 4 {
		go func() {
			p := make([]byte, 3*remote.MinBlockSize/2)
			for off := int64(r) * 1000; off+int64(len(p)) <= size; off += int64(len(p)) * 4 {
				n, err := f.ReadAt(p, off)
				if !bytes.Equal(p[:n], old[off:off+int64(n)]) {
					done <- errors.New("a read returned bytes that are not the opened version's")
					return
				}
				if err != nil {
					if !errors.Is(err, remote.ErrChanged) {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	put(t, s, "race.ova", next)
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.ReadAt(make([]byte, 1), 3*remote.MinBlockSize); !errors.Is(err, remote.ErrChanged) {
		t.Fatalf("a read of a block no reader fetched, after the change: %v, want ErrChanged", err)
	}
}
