// Package vmdkwriter writes streamOptimized VMDK files in the layout
// ovftool and ESX export: a header that defers to the footer
// (gdOffset = GD_AT_END), the embedded descriptor, zlib grains behind grain
// markers, each grain table behind a GT marker after its grains, the grain
// directory behind a GD marker, then the footer marker, the footer header
// and the end-of-stream marker.
//
// qemu-img never writes this layout (it puts the tables at the front), so
// tests, the demo and benchmarks use this package to produce it. It is a
// test-data generator: it writes everything in one pass to an io.Writer,
// skips grains that are all zeros, and compresses at the fastest level
// because generating data quickly matters more than the file's size.
package vmdkwriter
