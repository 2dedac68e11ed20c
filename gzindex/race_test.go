//go:build race

package gzindex

// The race detector slows the decoder's loops about twelvefold. Tests that
// only push data through one goroutine use smaller sizes under it, so that
// go test -race stays quick; the concurrent tests keep their full size.
const raceEnabled = true

func scaled(n int) int { return n / 8 }
