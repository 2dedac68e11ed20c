//go:build !race

package ova

const raceScale = 1
