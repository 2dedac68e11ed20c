//go:build !race

package zstdindex

func scaled(n int) int { return n }

// sparse is the stride of the hostile tests' samples.
const sparse = 1
