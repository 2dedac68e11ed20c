//go:build race

package xzindex

// The race detector slows decoding several times: tests that only push
// data through use smaller sizes under it.
func scaled(n int) int { return n / 4 }

// sparse is the stride of the hostile tests' samples.
const sparse = 3
