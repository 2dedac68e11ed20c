// Package sample builds appliances and disks with real content for
// `make demo`, the benchmarks and the tests, so that no large binary is
// ever committed.
package sample
