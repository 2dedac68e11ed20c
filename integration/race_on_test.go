//go:build race

package integration

// raceEnabled builds the daemon under test with the race detector when the
// tests themselves run with it, so races in the real binary fail CI too.
const raceEnabled = true
