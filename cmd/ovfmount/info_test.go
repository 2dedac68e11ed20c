package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestInfoShowsVAppsAndDeploymentOptions: a vApp shows its members and
// startup order, and a system's CPUs and memory say which deployment
// option they are for, with the other options' beside them.
func TestInfoShowsVAppsAndDeploymentOptions(t *testing.T) {
	fx := testutil.RealFixtures(t)
	for file, wants := range map[string][]string{
		"descriptors/vmware-govmomi/vApp_with_2vms.ovf": {"vApp          sql2k5-win-2k3-32-ent-sp2-ovf: 2 member(s)", "  Startup     centos-5.5-32-esx-qa: order 0, powerOn",
			"  In vApp     sql2k5-win-2k3-32-ent-sp2-ovf"},
		"descriptors/vmware-govmomi/deployment-configs.ovf": {"Deployment    small (Small), medium (Medium), large (Large) [default]",
			"8 CPU(s), 8.0 GiB memory (configuration large)", "  Option      small: 2 CPU(s), 2.0 GiB memory"},
	} {
		var out, errs bytes.Buffer
		if code := run([]string{"info", filepath.Join(fx, file)}, &out, &errs); code != 0 {
			t.Fatalf("info %s: exit %d: %s", file, code, errs.String())
		}
		for _, want := range wants {
			if !strings.Contains(out.String(), want) {
				t.Errorf("info %s lacks %q:\n%s", file, want, out.String())
			}
		}
	}
}

// TestSizesInBinaryUnits: info and verify's progress show sizes alike.
func TestSizesInBinaryUnits(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 700 << 20: "700.0 MiB", 3 << 30: "3.0 GiB", -1: "unknown"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	var done atomic.Int64
	done.Store(512 << 20)
	var buf syncBuf
	stop := showProgress(&buf, 1<<30, &done)
	time.Sleep(300 * time.Millisecond)
	stop()
	if s := buf.String(); !strings.Contains(s, "512.0 MiB of 1.0 GiB") {
		t.Errorf("progress line: %q", s)
	}
}

// syncBuf is a buffer the progress goroutine writes while the test reads.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
