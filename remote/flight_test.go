package remote

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// gated holds every request after Open until the test opens the gate.
func gated(srv *testServer) chan struct{} {
	gate := make(chan struct{})
	srv.setPlans(func(n int64, r *http.Request) plan {
		if n == 1 {
			return plan{}
		}
		return plan{gate: gate}
	})
	return gate
}

// Concurrent readers of one block share one request.
func TestConcurrentReadersShareOneRequest(t *testing.T) {
	data := testData(10*testBlock, 50)
	srv := newTestServer(t, data)
	gate := gated(srv)
	opt := testOptions()
	opt.ReadAhead = -1
	f := mustOpen(t, srv.url(), opt)

	const readers = 8
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := checkRead(f, data, 4*testBlock+int64(i)*1000, 500); err != nil {
				t.Error(err)
			}
		}()
	}
	eventually(t, "every reader to wait for the block", func() bool { return f.Stats().Shared == readers-1 })
	close(gate)
	wg.Wait()
	if got := f.Stats().Requests; got != 2 {
		t.Errorf("%d requests, want Open's and one for the block", got)
	}
}

// A cancelled read returns at once with ctx.Err(); the request it
// started goes on for another reader that still waits for the block, and
// is not made again.
func TestCancelledReadLeavesSharedFetchRunning(t *testing.T) {
	data := testData(10*testBlock, 51)
	srv := newTestServer(t, data)
	gate := gated(srv)
	opt := testOptions()
	opt.ReadAhead = -1
	f := mustOpen(t, srv.url(), opt)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.ReadAtContext(ctx, make([]byte, 100), 4*testBlock)
		errc <- err
	}()
	eventually(t, "the first read's request", func() bool { return srv.requests.Load() == 2 })
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := checkRead(f, data, 4*testBlock+100, 100); err != nil {
			t.Error(err)
		}
	}()
	eventually(t, "the second reader to join", func() bool { return f.Stats().Shared == 1 })

	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled read: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled read did not return")
	}
	close(gate)
	<-done
	if got := f.Stats().Requests; got != 2 {
		t.Errorf("%d requests: the shared fetch was not left running", got)
	}
	if got := srv.cancelled.Load(); got != 0 {
		t.Errorf("the server saw %d requests cancelled", got)
	}
}

// When the only reader of a block gives up, its request is cancelled, and
// a later read of the block asks again.
func TestCancelledSoleReaderCancelsRequest(t *testing.T) {
	data := testData(10*testBlock, 52)
	srv := newTestServer(t, data)
	gate := gated(srv)
	opt := testOptions()
	opt.ReadAhead = -1
	f := mustOpen(t, srv.url(), opt)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for srv.requests.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := f.ReadAtContext(ctx, make([]byte, 100), 4*testBlock); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAtContext: %v, want context.Canceled", err)
	}
	eventually(t, "the server to see the request cancelled", func() bool { return srv.cancelled.Load() == 1 })
	eventually(t, "the flight to go", func() bool { return f.inFlight() == 0 })
	close(gate)
	readCheck(t, f, data, 4*testBlock, 100)
	if got := f.Stats().Requests; got != 3 {
		t.Errorf("%d requests, want 3", got)
	}
}

// A read whose context is already done returns at once, and asks the
// server for nothing.
func TestReadWithDoneContext(t *testing.T) {
	data := testData(10*testBlock, 53)
	srv := newTestServer(t, data)
	f := mustOpen(t, srv.url(), testOptions())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.ReadAtContext(ctx, make([]byte, 10), 5*testBlock); err != context.Canceled {
		t.Fatalf("ReadAtContext: %v", err)
	}
	if got := f.Stats().Requests; got != 1 {
		t.Errorf("%d requests, want only Open's", got)
	}
}

// Close during reads: the reads end with ErrClosed, the requests in
// flight are cancelled, and Close waits for them.
func TestCloseDuringRead(t *testing.T) {
	data := testData(10*testBlock, 54)
	srv := newTestServer(t, data)
	gated(srv)
	f, err := Open(context.Background(), srv.url(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 10), 5*testBlock)
		errc <- err
	}()
	eventually(t, "the request", func() bool { return srv.requests.Load() == 2 })
	f.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("read during Close: %v, want ErrClosed", err)
	}
	if n := f.inFlight(); n != 0 {
		t.Errorf("%d flights left after Close", n)
	}
	eventually(t, "the server to see the request cancelled", func() bool { return srv.cancelled.Load() == 1 })
}
