package main

import (
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/importers"
)

// TestCheckHelp: --help names every target, every rule id and every flag.
func TestCheckHelp(t *testing.T) {
	code, out, errOut := runArgs("check", "--help")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, tg := range importers.Targets {
		if !strings.Contains(out, "  "+string(tg)+" ") {
			t.Errorf("--help does not list the target %s", tg)
		}
	}
	for _, r := range importers.Rules {
		if !strings.Contains(out, "  "+r.ID+" ") {
			t.Errorf("--help does not list the rule %s", r.ID)
		}
	}
	for _, f := range []string{"--target", "--vsphere-version", "--json", "docs/importers.md"} {
		if !strings.Contains(out, f) {
			t.Errorf("--help does not mention %s", f)
		}
	}
}

func TestCheckOptions(t *testing.T) {
	opts, err := checkOptions(" vsphere, Proxmox,vsphere ", "7.0U2")
	if err != nil || len(opts.Targets) != 2 || opts.Targets[0] != importers.VSphere || opts.Targets[1] != importers.Proxmox || opts.VSphereVersion != "7.0U2" {
		t.Errorf("got %+v, %v", opts, err)
	}
	if opts, err := checkOptions("all", ""); err != nil || opts.Targets != nil {
		t.Errorf("all: %+v, %v", opts, err)
	}
	for _, bad := range [][2]string{{"hyperv", ""}, {"vsphere,", ""}, {"", "seven"}, {"", "2.0"}} {
		if _, err := checkOptions(bad[0], bad[1]); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if code, _, errOut := runArgs("check", "--target", "hyperv", "x.ova"); code != exitUsage || !strings.Contains(errOut, "unknown target") {
		t.Errorf("--target hyperv: exit %d, %q", code, errOut)
	}
}
