package s3

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/remote"
)

// One sequential reader of an object through remote, reading 128 KiB at
// a time as FUSE does, moves at least as fast as one GET of the whole
// object, from a server as far as S3 is: each answer 20 ms late and paced
// at 16 MiB/s, as one S3 connection is paced by distance and by S3
// itself. Parallel range requests and read-ahead are what make up for it;
// the rates with remote's own defaults are logged beside the package's.
// Under the race detector, which makes the client CPU-bound on 2 cores,
// the rates are only logged.
func TestSequentialReadKeepsUpWithOneGET(t *testing.T) {
	if testing.Short() {
		t.Skip("a measurement")
	}
	const size = 24 << 20
	s, p, _ := startProxied(t, size)
	p.setPlan(func(int64) fault { return fault{latency: 20 * time.Millisecond, rate: 16 << 20} })
	ctx := context.Background()
	rate := func(start time.Time) float64 { return size / time.Since(start).Seconds() / (1 << 20) }

	// The GET, signed as Open signs.
	var opt Options
	opt.Endpoint, opt.Region = p.URL, s.Region
	tgt, err := resolve(ctx, &opt, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(p.URL)
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, objectURL(u, true, testBucket, "faults.ova"), nil)
	req.Header.Set("Range", "bytes=0-") // so that the proxy paces it too
	if err := signer(tgt.cfg.Credentials, tgt.region)(req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("GET: HTTP %d, %d bytes, %v", resp.StatusCode, n, err)
	}
	get := rate(start)

	read := func(opt Options) float64 {
		start := time.Now()
		f, err := Open(ctx, "s3://"+testBucket+"/faults.ova", opt)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 128<<10)
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := f.ReadAt(buf, off); err != nil {
				t.Fatal(err)
			}
		}
		return rate(start)
	}
	ours := read(opt)
	opt.Connections, opt.ReadAhead = remote.DefaultConnections, remote.DefaultReadAhead
	theirs := read(opt)
	t.Logf("one GET: %.1f MiB/s; a sequential reader: %.1f MiB/s (%.1fx) with %d connections and %d blocks of read-ahead, %.1f MiB/s (%.1fx) with remote's %d and %d",
		get, ours, ours/get, DefaultConnections, DefaultReadAhead, theirs, theirs/get, remote.DefaultConnections, remote.DefaultReadAhead)
	if ours < get && !raceEnabled {
		t.Errorf("the sequential reader (%.1f MiB/s) is slower than one GET (%.1f MiB/s)", ours, get)
	}
}
