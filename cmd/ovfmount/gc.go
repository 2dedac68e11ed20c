package main

import (
	"os"
	"runtime/debug"
)

// daemonGCPercent is the garbage collector's target for a mount: the heap
// may grow a quarter past what is live before a collection, instead of
// doubling (Go's default, GOGC=100).
//
// Why: the daemon's large holdings (decoded units, checked chunks) live
// outside the heap (package offheap), so what is live on it is mostly the
// kernel's nodes and short-lived reply buffers; the doubling, not the
// live heap, was most of the heap's share of resident memory. Reading 50,000 guest files (make bench, inside): the
// daemon's peak RSS was 180–184 MiB at GOGC=50 and 160 MiB at 25, before
// later rounds brought it to about 150. The price is CPU: the collector
// took 1.0 of the daemon's 9.5 CPU-seconds of that read at 25, and 0.42
// at 50 (runtime/metrics), where the peak RSS was 161 MiB.
const daemonGCPercent = 25

// tuneGC sets daemonGCPercent unless the user set GOGC. The mount calls
// it once ready: opening the package (an index of every member, the
// descriptor) allocates briefly and much, and collecting at 25 there made
// the mount's start-up slower.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
}
