package main

import (
	"bytes"
	"strings"
	"testing"
)

// runArgs runs the command line in-process and returns its exit code and
// what it printed on stdout and stderr.
func runArgs(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// "help COMMAND" must print what "COMMAND --help" prints, and the mount
// command's help is the top-level one.
func TestHelpCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the start of stdout
	}{
		{[]string{"help", "info"}, "Usage: ovfmount info [flags] ARCHIVE"},
		{[]string{"help", "verify"}, "Usage: ovfmount verify [flags] ARCHIVE"},
		{[]string{"help"}, "ovfmount mounts an OVA appliance"},
		{[]string{"help", "mount"}, "ovfmount mounts an OVA appliance"},
		{[]string{"--help"}, "ovfmount mounts an OVA appliance"},
	} {
		code, out, errOut := runArgs(tc.args...)
		if code != exitOK || !strings.HasPrefix(out, tc.want) || errOut != "" {
			t.Errorf("%q: exit %d, stdout starts %.60q, stderr %q; want exit 0 and stdout starting %q", tc.args, code, out, errOut, tc.want)
		}
		if sub := tc.args[len(tc.args)-1]; sub == "info" || sub == "verify" {
			_, direct, _ := runArgs(sub, "--help")
			if out != direct {
				t.Errorf("%q differs from %s --help", tc.args, sub)
			}
		}
	}

	code, out, errOut := runArgs("help", "nosuch")
	want := `ovfmount: help: no command "nosuch"; the commands are mount, info, verify, version and help`
	if code != exitUsage || out != "" || !strings.HasPrefix(errOut, want) {
		t.Errorf("help nosuch: exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, exitUsage, want)
	}
}

// -V is --version, as in sshfs and mount.fuse3, anywhere on the line, and
// --help lists it.
func TestVersionFlag(t *testing.T) {
	want := versionString() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-V"}, {"-f", "-V", "a.ova", "/mnt"}} {
		if code, out, errOut := runArgs(args...); code != exitOK || out != want || errOut != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and %q", args, code, out, errOut, want)
		}
	}
	if _, out, _ := runArgs("--help"); !strings.Contains(out, "-V, --version") {
		t.Errorf("--help does not list -V, --version:\n%s", out)
	}
}
