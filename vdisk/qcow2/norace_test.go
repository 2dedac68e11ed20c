//go:build !race

package qcow2

// raceEnabled: see race_test.go.
const raceEnabled = false
