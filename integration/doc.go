// Package integration holds tests that build the real ovfmount binary,
// mount real archives through the kernel, and compare what a user reads
// with what independent tools (GNU tar, qemu-img, sha256sum) say.
//
// They need FUSE: where /dev/fuse is missing they skip with the reason,
// except under `make test`, which makes them fail instead.
package integration
