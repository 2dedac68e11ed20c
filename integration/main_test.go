package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// ovfmountBin is the ovfmount executable under test, built once by TestMain.
var ovfmountBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ovfmount-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // tests run the ovfmountBin as another user too
	ovfmountBin = filepath.Join(dir, "ovfmount")
	args := []string{"build", "-o", ovfmountBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", append(args, "./cmd/ovfmount")...)
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building ovfmount: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
