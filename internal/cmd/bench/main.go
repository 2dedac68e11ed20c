// Command bench measures ovfmount beside the tools users would otherwise
// reach for, in one run on one machine, and prints the figures with their
// ratios. `make bench` runs it. Nothing here is a pass/fail test: the
// numbers are for people, and depend on the machine.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

var (
	binary   = flag.String("bin", "bin/ovfmount", "the ovfmount binary to measure")
	baseline = flag.String("baseline", "", "an earlier ovfmount binary, measured in the same turns as -bin in the random and verify sections, for before/after ratios")
	work     = flag.String("dir", filepath.Join(os.TempDir(), "ovfmount-bench"), "folder for generated fixtures (kept between runs)")
	only     = flag.String("only", "", "comma-separated sections to run (default: all): "+strings.Join(sectionNames(), ", "))
)

type section struct {
	name string
	run  func(r *report) error
}

var sections = []section{
	{"ready", benchReady},
	{"stored", benchStored},
	{"vmdk", benchVMDK},
	{"random", benchRandom},
	{"audit", benchAudit},
	{"formats", benchFormats},
	{"chain", benchChain},
	{"verify", benchVerify},
	{"diskhash", benchDiskHash},
	{"gzip", benchGzip},
	{"remote", benchRemote},
	{"roundtrip", benchRoundtrip},
	{"inside", benchInside},
	{"nbd", benchNBD},
	{"overlay", benchOverlay},
	{"compressed", benchCompressed},
	{"library", benchLibrary},
	{"s3", benchS3},
}

func sectionNames() []string {
	var out []string
	for _, s := range sections {
		out = append(out, s.name)
	}
	return out
}

func main() {
	flag.Parse()
	if err := os.MkdirAll(*work, 0o755); err != nil {
		fail(err)
	}
	abs, err := filepath.Abs(*binary)
	if err != nil {
		fail(err)
	}
	*binary = abs
	if *baseline != "" {
		if *baseline, err = filepath.Abs(*baseline); err != nil {
			fail(err)
		}
	}
	r := &report{}
	fmt.Printf("ovfmount benchmarks: %d cores, %s, %s\n", runtime.NumCPU(), runtime.GOOS, time.Now().Format(time.RFC3339))
	if out, err := exec.Command(*binary, "version").Output(); err == nil {
		fmt.Printf("binary: %s", out)
	}
	fmt.Printf("fixtures in %s\n\n", *work)
	for _, s := range sections {
		if *only != "" && !strings.Contains(","+*only+",", ","+s.name+",") {
			continue
		}
		if err := s.run(r); err != nil {
			fail(fmt.Errorf("%s: %w", s.name, err))
		}
	}
	r.print()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
