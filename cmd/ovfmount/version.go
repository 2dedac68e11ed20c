package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
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
	return fmt.Sprintf("ovfmount %s (%s, go-fuse %s)", v, runtime.Version(), fuseVersion)
}
