package remote

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// Open costs one request, learns the size, and caches the first block
// from that same answer: reading the first tar header costs nothing more.
func TestOpenCostsOneRequestAndCachesFirstBlock(t *testing.T) {
	data := testData(3<<20+100, 1)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), Options{Version: "1.2.3", ReadAhead: -1})
	if f.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", f.Size(), len(data))
	}
	if got := f.Stats().Requests; got != 1 {
		t.Fatalf("Open made %d requests, want 1", got)
	}
	readCheck(t, f, data, 0, 512)
	readCheck(t, f, data, 1000, DefaultBlockSize-1000)
	if st := f.Stats(); st.Requests != 1 || st.MemoryHits != 2 {
		t.Fatalf("reading the first block after Open: %+v, want 1 request and 2 memory hits", st)
	}
	h := srv.seen()[0].header
	for k, want := range map[string]string{
		"Range":           "bytes=0-1048575",
		"User-Agent":      "ovfmount/1.2.3",
		"Accept-Encoding": "identity",
		"If-Range":        "",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("Open's request has %s %q, want %q", k, got, want)
		}
	}
}

// Many random reads of random sizes, across block boundaries and into
// the partial last block, from several goroutines at once, with a memory
// budget small enough that blocks are evicted and fetched again: every
// byte must match the file.
func TestRandomReadsMatchTheFile(t *testing.T) {
	data := testData(3<<20+12345, 2)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.MemoryBudget = 16 * testBlock
	f := mustOpen(t, srv.url(), opt)
	size := int64(len(data))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			p := make([]byte, 300<<10)
			for range 150 {
				off := r.Int64N(size + 10)
				n := r.IntN(len(p) + 1)
				switch r.IntN(4) {
				case 0: // straddle a block boundary
					off = max(0, (off/testBlock)*testBlock-int64(r.IntN(100)))
				case 1: // run into the end of the file
					off = max(0, size-int64(r.IntN(2*testBlock)))
				}
				got, err := f.ReadAt(p[:n], off)
				want := max(0, min(int64(n), size-off))
				if int64(got) != want || (want < int64(n) && err != io.EOF) || (want == int64(n) && err != nil) {
					t.Errorf("ReadAt(%d at %d) = %d, %v; want %d bytes", n, off, got, err, want)
					return
				}
				if string(p[:got]) != string(data[off:off+int64(got)]) {
					t.Errorf("ReadAt(%d at %d): wrong bytes", n, off)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := f.memBlocks(); n > 16 {
		t.Errorf("memory cache holds %d blocks, budget is 16", n)
	}
}

// io.ReaderAt's rules at the edges, and io.SectionReader on top of a File
// passes the standard library's reader conformance test.
func TestReaderAtSemantics(t *testing.T) {
	data := testData(5*testBlock+77, 3)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), testOptions())
	size := int64(len(data))
	p := make([]byte, 100)
	for _, c := range []struct {
		off   int64
		n     int
		wantN int
		eof   bool
	}{
		{size, 10, 0, true},
		{size + 1000, 10, 0, true},
		{size - 5, 10, 5, true},
		{size - 5, 5, 5, false},
		{0, 0, 0, false},
		{size, 0, 0, false},
	} {
		n, err := f.ReadAt(p[:c.n], c.off)
		if n != c.wantN || (err == io.EOF) != c.eof || (!c.eof && err != nil) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d, eof %v", c.n, c.off, n, err, c.wantN, c.eof)
		}
	}
	if _, err := f.ReadAt(p, -1); err == nil || err == io.EOF {
		t.Errorf("ReadAt at -1: %v, want an error", err)
	}
	if err := iotest.TestReader(io.NewSectionReader(f, 0, size), data); err != nil {
		t.Error(err)
	}
}

// A block in memory is read again without a request; one not in memory
// costs exactly one.
func TestCachedBlockCostsNoRequest(t *testing.T) {
	data := testData(20*testBlock, 4)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.ReadAhead = -1
	f := mustOpen(t, srv.url(), opt)
	readCheck(t, f, data, 5*testBlock+10, 100)
	if got := f.Stats().Requests; got != 2 {
		t.Fatalf("after one uncached read: %d requests, want 2", got)
	}
	readCheck(t, f, data, 5*testBlock+1000, 2000)
	readCheck(t, f, data, 5*testBlock, testBlock)
	if got := f.Stats().Requests; got != 2 {
		t.Fatalf("re-reading a cached block made requests: %d in all, want 2", got)
	}
}

// A read over several missing blocks asks for adjacent ones in one
// request, around the blocks already cached, and no request is larger
// than maxRequestBytes.
func TestSpanningReadsCoalesce(t *testing.T) {
	data := testData(400*testBlock, 5)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.ReadAhead = -1
	f := mustOpen(t, srv.url(), opt)

	readCheck(t, f, data, 12*testBlock, 10) // caches block 12
	base := f.Stats().Requests
	readCheck(t, f, data, 10*testBlock+5, 5*testBlock) // blocks 10..15, 12 cached
	if got := f.Stats().Requests - base; got != 2 {
		t.Errorf("read of blocks 10-15 with 12 cached: %d requests, want 2 (10-11 and 13-15)", got)
	}
	var ranges []string
	for _, s := range srv.seen()[2:] {
		ranges = append(ranges, s.header.Get("Range"))
	}
	sort.Strings(ranges) // asked for in parallel: in any order
	want := []string{"bytes=655360-786431", "bytes=851968-1048575"}
	if strings.Join(ranges, " ") != strings.Join(want, " ") {
		t.Errorf("ranges asked for: %v, want %v", ranges, want)
	}

	base = f.Stats().Requests
	readCheck(t, f, data, 100*testBlock, 300*testBlock) // 300 blocks, 19.2 MB
	perRequest := int64(maxRequestBytes / testBlock)
	if got, want := f.Stats().Requests-base, (300+perRequest-1)/perRequest; got != want {
		t.Errorf("a %d-block read: %d requests, want %d", 300, got, want)
	}
	for _, s := range srv.seen() {
		if r := s.header.Get("Range"); r != "" {
			var a, b int64
			if _, err := fmt.Sscanf(r, "bytes=%d-%d", &a, &b); err != nil || b-a+1 > maxRequestBytes {
				t.Errorf("request for %s: more than %d bytes", r, maxRequestBytes)
			}
		}
	}
}

// An empty file: Go's server answers 200 with no body, nginx-like servers
// 416 with "bytes */0". Either way the size is 0 and reads see EOF.
func TestEmptyFile(t *testing.T) {
	for _, name := range []string{"200", "416"} {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, nil)
			if name == "416" {
				srv.setPlans(func(int64, *http.Request) plan {
					return plan{handler: func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Range", "bytes */0")
						w.Header().Set("ETag", `"empty"`)
						w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
					}}
				})
			}
			f := mustOpen(t, srv.url(), testOptions())
			if f.Size() != 0 {
				t.Fatalf("Size = %d, want 0", f.Size())
			}
			if n, err := f.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt = %d, %v; want 0, EOF", n, err)
			}
		})
	}
}

// A server that ignores Range is fine for a file no larger than a block:
// the whole answer is the first block.
func TestSmallFileFromServerWithoutRanges(t *testing.T) {
	data := testData(1000, 6)
	srv := newTestServer(t, data)
	srv.setPlans(func(int64, *http.Request) plan { return plan{ignoreRange: true} })
	f := mustOpen(t, srv.url(), testOptions())
	if f.Size() != 1000 {
		t.Fatalf("Size = %d, want 1000", f.Size())
	}
	readCheck(t, f, data, 0, 1000)
	readCheck(t, f, data, 990, 100)
	if got := f.Stats().Requests; got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

func TestOptionsAndURLsChecked(t *testing.T) {
	srv := newTestServer(t, testData(100, 7))
	for _, c := range []struct {
		name string
		url  string
		opt  Options
		want string
	}{
		{"block not a power of two", srv.url(), Options{BlockSize: 3 << 20}, "block size"},
		{"block too small", srv.url(), Options{BlockSize: 4096}, "block size"},
		{"memory below a block", srv.url(), Options{MemoryBudget: 1000}, "memory budget"},
		{"negative connections", srv.url(), Options{Connections: -1}, "connections"},
		{"negative timeout", srv.url(), Options{RequestTimeout: -1}, "timeout"},
		{"negative disk budget", srv.url(), Options{DiskBudget: -1}, "disk budget"},
		{"CAs with client", srv.url(), Options{Client: &http.Client{}, RootCAs: x509.NewCertPool()}, "RootCAs"},
		{"ftp", "ftp://user:hunter2@example.com/a.ova", Options{}, "not an http or https URL"},
		{"no host", "http:///a.ova", Options{}, "not an http or https URL"},
		{"unparsable", "http://user:hunter2@[::1/a.ova", Options{}, "invalid URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Open(context.Background(), c.url, c.opt)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestCloseEndsReads(t *testing.T) {
	data := testData(10*testBlock, 8)
	srv := newTestServer(t, data)
	f, err := Open(context.Background(), srv.url(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	readCheck(t, f, data, 0, 100)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 10), 0); err != ErrClosed {
		t.Fatalf("ReadAt after Close: %v, want ErrClosed", err)
	}
}

// Bodies are read to their end, so one keep-alive connection serves a
// whole series of reads.
func TestConnectionsAreReused(t *testing.T) {
	data := testData(30*testBlock, 9)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.ReadAhead = -1
	f := mustOpen(t, srv.url(), opt)
	for _, b := range []int64{20, 3, 17, 9, 28, 1, 12} {
		readCheck(t, f, data, b*testBlock+10, 1000)
	}
	if got := srv.conns.Load(); got != 1 {
		t.Errorf("%d connections for %d requests, want 1", got, f.Stats().Requests)
	}
}

// No more than Connections requests are ever in flight, however many
// readers there are.
func TestConnectionsBound(t *testing.T) {
	data := testData(64*testBlock, 10)
	srv := newTestServer(t, data)
	srv.setPlans(func(int64, *http.Request) plan { return plan{trickle: time.Millisecond} })
	opt := testOptions()
	opt.Connections = 3
	f := mustOpen(t, srv.url(), opt)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := int64(g); b < 64; b += 16 {
				if err := checkRead(f, data, b*testBlock, testBlock); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if m := srv.maxActive.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d requests at once, want 2 or 3 (Connections is 3)", m)
	}
}
