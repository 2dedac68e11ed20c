//go:build race

package integration

// raceEnabled builds a daemon with the race detector too when the tests
// themselves run with it, so that races in the real binary fail CI; the
// tests in raceTests run it.
const raceEnabled = true
