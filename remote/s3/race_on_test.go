//go:build race

package s3

// raceEnabled: the race detector slows the client several times over,
// so measurements are logged, not checked.
const raceEnabled = true
