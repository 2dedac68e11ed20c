package remote

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// rangeStart is the first byte a request asks for, or -1.
func rangeStart(r *http.Request) int64 {
	var a, b int64
	if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err != nil {
		return -1
	}
	return a
}

// A second sequential read starts read-ahead: the blocks after it are
// fetched before they are asked for, and reading them costs no wait.
func TestSequentialReadTriggersReadAhead(t *testing.T) {
	data := testData(40*testBlock, 60)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), testOptions())
	readCheck(t, f, data, 1*testBlock, testBlock)
	if got := f.Stats().Prefetched; got != 0 {
		t.Fatalf("one read started read-ahead (%d blocks)", got)
	}
	readCheck(t, f, data, 2*testBlock, testBlock)
	eventually(t, "blocks 3 and 4 to be read ahead", func() bool { return f.cached(3) && f.cached(4) })
	st := f.Stats()
	readCheck(t, f, data, 3*testBlock, testBlock)
	if got := f.Stats(); got.MemoryHits != st.MemoryHits+1 || got.Shared != st.Shared {
		t.Errorf("reading a block read ahead: %+v then %+v, want a memory hit", st, got)
	}
	if st.Prefetched < 2 {
		t.Errorf("Prefetched = %d, want at least 2", st.Prefetched)
	}
}

// A whole-file sequential copy in small reads: right bytes, and far fewer
// requests than blocks, as read-ahead asks for several blocks at a time.
func TestSequentialCopyUsesFewRequests(t *testing.T) {
	const blocks = 64
	data := testData(blocks*testBlock, 61)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), testOptions())
	for off := 0; off < len(data); off += 16 << 10 {
		readCheck(t, f, data, int64(off), 16<<10)
	}
	st := f.Stats()
	if st.Prefetched == 0 || st.Requests > blocks/2 {
		t.Errorf("%+v: want read-ahead, and at most %d requests for %d blocks", st, blocks/2, blocks)
	}
}

// Two sequential streams at once each get read-ahead.
func TestTwoStreamsBothReadAhead(t *testing.T) {
	data := testData(60*testBlock, 62)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), testOptions())
	for _, b := range []int64{10, 30, 11, 31} {
		readCheck(t, f, data, b*testBlock, testBlock)
	}
	eventually(t, "both streams to be read ahead", func() bool { return f.cached(12) && f.cached(32) })
}

// Random reads start no read-ahead; nor does anything with it turned off.
func TestNoReadAheadWithoutSequentialReads(t *testing.T) {
	data := testData(40*testBlock, 63)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), testOptions())
	for _, b := range []int64{10, 3, 20, 7, 30, 15} {
		readCheck(t, f, data, b*testBlock+100, 1000)
	}
	if st := f.Stats(); st.Prefetched != 0 || st.Requests != 7 {
		t.Errorf("random reads: %+v, want no read-ahead and 7 requests", st)
	}

	// A tar index scan: one 512-byte header after another, each a few
	// KiB past the last. Its reads are near each other but read little;
	// fetching blocks ahead of it would be waste.
	h := mustOpen(t, srv.url(), testOptions())
	for off := int64(0); off < 3*testBlock; off += 3 << 10 {
		readCheck(t, h, data, off, 512)
	}
	if st := h.Stats(); st.Prefetched != 0 {
		t.Errorf("a header scan: %+v, want no read-ahead", st)
	}

	opt := testOptions()
	opt.ReadAhead = -1
	g := mustOpen(t, srv.url(), opt)
	for off := 0; off < len(data); off += testBlock {
		readCheck(t, g, data, int64(off), testBlock)
	}
	if st := g.Stats(); st.Prefetched != 0 {
		t.Errorf("read-ahead off: %d blocks prefetched", st.Prefetched)
	}
}

// Read-ahead may take at most half the connections: with the read-ahead
// of two streams stuck on the server, a read elsewhere still gets through.
func TestReadAheadDoesNotStarveReads(t *testing.T) {
	data := testData(40*testBlock, 64)
	srv := newTestServer(t, data)
	gate := make(chan struct{})
	defer close(gate)
	opt := testOptions()
	opt.Connections = 2
	opt.RequestTimeout = time.Minute // stuck requests stay stuck
	f := mustOpen(t, srv.url(), opt)
	srv.setPlans(func(n int64, r *http.Request) plan {
		if a := rangeStart(r) / testBlock; a >= 3 && a < 20 || a >= 23 && a < 30 {
			return plan{gate: gate}
		}
		return plan{}
	})
	for _, b := range []int64{1, 2, 21, 22} {
		readCheck(t, f, data, b*testBlock, testBlock)
	}
	eventually(t, "read-ahead to be in flight", func() bool { return f.inFlight() > 0 })
	done := make(chan error, 1)
	go func() { done <- checkRead(f, data, 30*testBlock, 100) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read was starved by read-ahead")
	}
}

// Close stops read-ahead: its requests are cancelled and Close waits for
// them.
func TestCloseStopsReadAhead(t *testing.T) {
	data := testData(40*testBlock, 65)
	srv := newTestServer(t, data)
	gate := make(chan struct{})
	defer close(gate)
	f, err := Open(context.Background(), srv.url(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv.setPlans(func(n int64, r *http.Request) plan {
		if rangeStart(r) >= 3*testBlock {
			return plan{gate: gate}
		}
		return plan{}
	})
	readCheck(t, f, data, 1*testBlock, testBlock)
	readCheck(t, f, data, 2*testBlock, testBlock)
	eventually(t, "read-ahead to be in flight", func() bool { return srv.requests.Load() == 4 })
	closed := make(chan struct{})
	go func() { f.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	eventually(t, "the server to see read-ahead cancelled", func() bool { return srv.cancelled.Load() == 1 })
	if got := srv.requests.Load(); got != 4 {
		t.Errorf("%d requests: read-ahead went on after Close", got)
	}
}

// Read-ahead stays within the memory budget: its window is at most half
// the blocks the budget holds, and the cache never holds more.
func TestReadAheadWithinMemoryBudget(t *testing.T) {
	data := testData(64*testBlock, 66)
	srv := newTestServer(t, data)
	opt := testOptions()
	opt.MemoryBudget = 8 * testBlock
	opt.ReadAhead = 32
	f := mustOpen(t, srv.url(), opt)
	if f.cfg.readAhead != 4 {
		t.Errorf("read-ahead window %d blocks with an 8-block budget, want 4", f.cfg.readAhead)
	}
	for off := 0; off < len(data); off += 32 << 10 {
		readCheck(t, f, data, int64(off), 32<<10)
		if n := f.memBlocks(); n > 8 {
			t.Fatalf("%d blocks in memory, budget 8", n)
		}
	}
	if f.Stats().Prefetched == 0 {
		t.Error("no read-ahead")
	}
}
