package main

import (
	"bytes"
	"os"
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
		{[]string{"help", "check"}, "Usage: ovfmount check [flags] ARCHIVE"},
		{[]string{"help", "audit"}, "Usage: ovfmount audit verify [flags] FILE"},
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
	want := `ovfmount: help: no command "nosuch"; the commands are mount, info, verify, check, serve, overlay, map, audit, version and help`
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

// A first argument a slip away from a command is reported as a mistyped
// command, unless a file of that name exists: then it is the archive.
func TestMistypedCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tc := range []struct{ arg, want string }{
		{"inf", "info"}, {"ifno", "info"}, {"Info", "info"}, {"verfy", "verify"}, {"verfiy", "verify"},
		{"vrsion", "version"}, {"verison", "version"}, {"hepl", "help"}, {"hel", "help"},
		{"nosuch", ""}, {"i", ""}, {"vers", ""}, {"appliance.ova", ""}, {"-f", ""},
	} {
		if tc.want == "" {
			// Not run: the mount command would start a background mount.
			if err := mistypedCommand(tc.arg); err != nil {
				t.Errorf("%q: taken for a mistyped command: %v", tc.arg, err)
			}
			continue
		}
		code, out, errOut := runArgs(tc.arg, "mnt")
		want := `ovfmount: unknown command "` + tc.arg + `" (did you mean "` + tc.want + `"?); ARCHIVE "` + tc.arg + `" does not exist either`
		if code != exitUsage || out != "" || !strings.HasPrefix(errOut, want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.arg, code, out, errOut, exitUsage, want)
		}
	}

	// An archive that exists is never a command, whatever its name: the
	// mount goes on to the mountpoint check, which fails here.
	if err := os.WriteFile("inf", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mistypedCommand("inf"); err != nil {
		t.Errorf("an existing file named inf: %v", err)
	}

	code, _, errOut := runArgs("help", "verfy")
	if want := `ovfmount: help: no command "verfy" (did you mean "verify"?)`; code != exitUsage || !strings.HasPrefix(errOut, want) {
		t.Errorf("help verfy: exit %d, stderr %q; want exit %d and %q", code, errOut, exitUsage, want)
	}
}
