package remote

import (
	"context"
	"errors"
)

// Blocks are fetched in runs: a goroutine fetches a stretch of adjacent
// blocks in one range request and hands each block over as it completes.
// Each block of a run is a flight in File.flights while it is on its way;
// a read that needs a block in flight waits for that flight instead of
// asking again, so a block is requested once however many read it.
//
// A run is not tied to the read that started it: it goes on while any
// read still waits for one of its blocks (refs counts them), and is
// cancelled when the last one gives up. Read-ahead runs hold one ref of
// their own, so they finish unless the File is closed.

type run struct {
	first, last int64
	prefetch    bool
	ctx         context.Context
	cancel      context.CancelCauseFunc
	refs        int  // guarded by File.mu
	done        bool // guarded by File.mu: finished or cancelled
}

type flight struct {
	run  *run
	done chan struct{} // closed by whoever removes the flight from File.flights
	data []byte        // set before done is closed
	err  error
}

// wanted is a block a read needs: in memory already, or a flight to wait
// for.
type wanted struct {
	idx  int64
	data []byte
	fl   *flight // nil once waited for, when its ref is given back
}

// lookup finds blocks first..last in memory or in flight, and starts runs
// for the rest, each stretch of adjacent missing blocks in as few requests
// as runBlocks allows.
func (f *File) lookup(first, last int64) ([]wanted, error) {
	ws := make([]wanted, last-first+1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return nil, ErrClosed
	}
	missFrom := int64(-1)
	startRuns := func(to int64) {
		for a := missFrom; a <= to; a += f.runBlocks {
			b := min(a+f.runBlocks-1, to)
			f.startRunLocked(a, b, false, int(b-a+1))
			for idx := a; idx <= b; idx++ {
				ws[idx-first].fl = f.flights[idx]
			}
		}
		missFrom = -1
	}
	for idx := first; idx <= last; idx++ {
		w := &ws[idx-first]
		w.idx = idx
		if data, ok := f.mem.get(idx); ok {
			w.data = data
			f.stats.memHits.Add(1)
		} else if fl, ok := f.flights[idx]; ok {
			fl.run.refs++
			w.fl = fl
			f.stats.shared.Add(1)
		} else {
			if missFrom < 0 {
				missFrom = idx
			}
			continue
		}
		if missFrom >= 0 {
			startRuns(idx - 1)
		}
	}
	if missFrom >= 0 {
		startRuns(last)
	}
	return ws, nil
}

// startRunLocked starts fetching blocks a..b. The caller holds f.mu, has
// checked f.closing (so the WaitGroup is not being waited on yet), and
// holds refs on the run.
func (f *File) startRunLocked(a, b int64, prefetch bool, refs int) {
	ctx, cancel := context.WithCancelCause(f.ctx)
	r := &run{first: a, last: b, prefetch: prefetch, ctx: ctx, cancel: cancel, refs: refs}
	for idx := a; idx <= b; idx++ {
		f.flights[idx] = &flight{run: r, done: make(chan struct{})}
	}
	f.wg.Add(1)
	go f.runFetch(r)
}

func (f *File) runFetch(r *run) {
	defer f.wg.Done()
	if r.prefetch {
		defer func() { <-f.pslots }()
	}
	err := f.execRun(r.ctx, r)
	if err != nil && errors.Is(err, ErrChanged) {
		f.fail(err)
	}
	f.finishRun(r, err)
	r.cancel(nil)
}

// publish hands over a fetched block: to the memory cache, to the reads
// waiting for it, and (fetched over the network) to the disk cache.
func (f *File) publish(r *run, idx int64, data []byte, src source) {
	f.mu.Lock()
	if !f.closing {
		f.mem.add(idx, data)
	}
	fl := f.flights[idx]
	if fl != nil && fl.run == r {
		delete(f.flights, idx)
	} else {
		fl = nil
	}
	f.mu.Unlock()
	// Count before the readers see the block, so that what they see is
	// already in Stats.
	if r.prefetch {
		f.stats.prefetched.Add(1)
	}
	if src == fromDisk {
		f.stats.diskHits.Add(1)
	}
	if fl != nil {
		fl.data = data
		close(fl.done)
	}
	if src == fromNetwork && f.disk != nil {
		if err := f.disk.put(idx, data); err != nil {
			f.warnDisk(err)
		}
	}
}

// finishRun fails the flights a run leaves undelivered.
func (f *File) finishRun(r *run, err error) {
	f.mu.Lock()
	r.done = true
	var left []*flight
	for idx := r.first; idx <= r.last; idx++ {
		if fl := f.flights[idx]; fl != nil && fl.run == r {
			delete(f.flights, idx)
			left = append(left, fl)
		}
	}
	f.mu.Unlock()
	if len(left) > 0 && err == nil {
		err = errors.New("internal error: a fetch ended without delivering its block")
	}
	for _, fl := range left {
		fl.err = err
		close(fl.done)
	}
}

// wait returns a wanted block's bytes, waiting for its flight if need
// be, or ctx.Err() as soon as ctx ends.
func (f *File) wait(ctx context.Context, w *wanted) ([]byte, error) {
	fl := w.fl
	if fl == nil {
		return w.data, nil
	}
	select {
	case <-fl.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	w.fl = nil
	f.mu.Lock()
	f.releaseLocked(fl.run)
	f.mu.Unlock()
	return fl.data, fl.err
}

// releaseAll gives back the refs of blocks a read no longer waits for.
func (f *File) releaseAll(ws []wanted) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range ws {
		if fl := ws[i].fl; fl != nil {
			ws[i].fl = nil
			f.releaseLocked(fl.run)
		}
	}
}

// releaseLocked gives back one ref on r, cancelling it when nobody waits
// for it any more: its undelivered flights go, so a later read of those
// blocks starts afresh instead of joining a cancelled fetch.
func (f *File) releaseLocked(r *run) {
	r.refs--
	if r.refs > 0 || r.done {
		return
	}
	r.done = true
	r.cancel(context.Canceled)
	for idx := r.first; idx <= r.last; idx++ {
		if fl := f.flights[idx]; fl != nil && fl.run == r {
			delete(f.flights, idx)
			fl.err = context.Canceled
			close(fl.done)
		}
	}
}

// acquireConn takes a request slot, so that no more than Connections
// requests are in flight.
func (f *File) acquireConn(ctx context.Context) error {
	select {
	case f.conns <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (f *File) releaseConn() { <-f.conns }
