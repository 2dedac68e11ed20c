package fs

import (
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// fusermount's messages are told from other stderr lines by the program
// name they start with, and kept; the others are passed on unchanged.
func TestSplitFusermount(t *testing.T) {
	in := `{"level":"warn","message":"the package has no manifest: nothing can be verified"}
/usr/bin/fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf
2026-01-01T00:00:00Z WRN archive: a.ova: shadowed duplicate
fusermount: user has no write access to mountpoint /mnt
not fusermount3: at the start
/bin/fusermount3: failed to open /dev/fuse: Permission denied`
	var passed strings.Builder
	said := splitFusermount(strings.NewReader(in), &passed)
	wantSaid := []string{
		"fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf",
		"fusermount: user has no write access to mountpoint /mnt",
		"fusermount3: failed to open /dev/fuse: Permission denied",
	}
	if !reflect.DeepEqual(said, wantSaid) {
		t.Errorf("kept %q, want %q", said, wantSaid)
	}
	wantPassed := `{"level":"warn","message":"the package has no manifest: nothing can be verified"}
2026-01-01T00:00:00Z WRN archive: a.ova: shadowed duplicate
not fusermount3: at the start
`
	if passed.String() != wantPassed {
		t.Errorf("passed on %q, want %q", passed.String(), wantPassed)
	}
}

// go-fuse's "fusermount exited with code 256\n" becomes what fusermount
// said, or failing that a wait status read as an exit status.
func TestMountError(t *testing.T) {
	goFuse := errors.New("fusermount exited with code 256\n")
	for _, tc := range []struct {
		err  error
		said []string
		want string
	}{
		{goFuse, []string{"fusermount3: failed to open /dev/fuse: Permission denied"},
			"fusermount3: failed to open /dev/fuse: Permission denied"},
		{goFuse, []string{"fusermount3: a", "fusermount3: b"}, "fusermount3: a; fusermount3: b"},
		{goFuse, nil, "fusermount3 failed with exit status 1 and gave no reason"},
		{errors.New("fusermount exited with code 9\n"), nil, "fusermount3 failed on signal killed and gave no reason"},
		{fmt.Errorf("looking for fusermount: %w", exec.ErrNotFound), nil,
			"fusermount3 is not installed (the fuse3 package has it), and mounting without it needs root"},
		{errors.New("init: EIO\n"), nil, "init: EIO"},
	} {
		got := mountError(tc.err, tc.said)
		if got.Error() != tc.want {
			t.Errorf("%q with %q: %q, want %q", tc.err, tc.said, got, tc.want)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%q: the result does not wrap go-fuse's error", got)
		}
	}
	plain := errors.New("no such device")
	if got := mountError(plain, nil); got != plain {
		t.Errorf("a tidy error was rewritten: %v", got)
	}
}
