//go:build !race

package gzindex

// Without the race detector, tests use full sizes.
const raceEnabled = false

func scaled(n int) int { return n }
