package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The ovfmount executables under test, built once by TestMain: plainBin
// always, raceBin too when the tests run with the race detector.
var plainBin, raceBin string

// raceTests are the tests whose daemon runs under the race detector when
// the tests do: those whose point is concurrency (parallel readers,
// writers, read-ahead, lazy opening), signals and unmounts during reads,
// or sources changing or failing under a mount. The others mostly push
// data through decoders, which the race detector slows four to five
// times (135 s against 31 s for three of them here) while the packages'
// own -race tests cover that code; the total had come near make test's
// budget.
var raceTests = map[string]bool{
	"TestParallelReaders": true, "TestSignalUnmounts": true, "TestSIGTERMWhileReading": true,
	"TestKilledReaderAndBusyUnmount": true, "TestSIGTERMDuringVerification": true,
	"TestFailingDiskReadsDoNotBlockOthers": true, "TestArchiveChangesUnderneath": true,
	"TestVanishingStorage": true, "TestLibrary": true, "TestLibraryOfAThousand": true,
	"TestServeNBD": true, "TestServeNBDOverlay": true, "TestOverlayGuestWrites": true,
	"TestOverlayConcurrentWriters": true, "TestOverlaySurvivesKill": true, "TestRemote": true,
	"TestRemoteStalledOpenInterrupted": true, "TestS3": true, "TestStress": true,
	"TestRandomReadsOfVerifiedViews": true, "TestChunkedLazyVerification": true,
	"TestLazyVerifyXattrs": true, "TestSmallReadsAcrossPieces": true, "TestTamperAfterVerify": true,
	"TestVerifyInterrupted": true,
}

// raceDaemon reports whether t's daemon is the race build.
func raceDaemon(t testing.TB) bool {
	return raceBin != "" && raceTests[strings.Split(t.Name(), "/")[0]]
}

// daemon returns the executable t runs.
func daemon(t testing.TB) string {
	if raceDaemon(t) {
		return raceBin
	}
	return plainBin
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ovfmount-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // tests run the daemon as another user too
	// Both are named ovfmount, as users' is (daemonOf finds it by name).
	plainBin = build(dir, "plain")
	if raceEnabled {
		raceBin = build(dir, "race", "-race")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir, sub string, flags ...string) string {
	bin := filepath.Join(dir, sub, "ovfmount")
	os.Mkdir(filepath.Dir(bin), 0o755)
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, flags...), "./cmd/ovfmount")...)
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building ovfmount %v: %v\n%s", flags, err, out)
		os.Exit(1)
	}
	return bin
}
