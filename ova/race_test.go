//go:build race

package ova

// raceScale shrinks the large payloads of the zip tests under the race
// detector, which slows byte loops (decoding, copying, comparing) tenfold
// or more; the logic they cover is the same at any size.
const raceScale = 5
