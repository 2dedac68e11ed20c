package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/ovfmount/ovfmount/vdisk/codec"
)

// version is set at build time by the Makefile (-ldflags -X main.version=).
var version string

func versionString() string {
	v, fuseVersion := version, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/hanwen/go-fuse/v2" {
				fuseVersion = d.Version
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	// The inflater is named because compressed disks read about 2.5x
	// faster with libdeflate: a slow report starts with which one it was.
	return fmt.Sprintf("ovfmount %s (%s, go-fuse %s, inflate: %s)", v, runtime.Version(), fuseVersion, codec.Backend())
}
