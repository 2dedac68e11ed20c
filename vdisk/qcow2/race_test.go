//go:build race

package qcow2

// raceEnabled: under the race detector, inflating is several times slower,
// so the random, boundary and concurrent read tests do fewer reads; the
// whole-disk comparisons are unchanged.
const raceEnabled = true
