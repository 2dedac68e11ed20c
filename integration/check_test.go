package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/vmdkwriter"
)

// checkJSON is `ovfmount check --json`'s schema, as the README documents it.
type checkJSON struct {
	Archive string `json:"archive"`
	Targets []struct {
		Name     string `json:"name"`
		Verdict  string `json:"verdict"`
		Failures int    `json:"failures"`
		Warnings int    `json:"warnings"`
	} `json:"targets"`
	Findings []struct {
		Target   string `json:"target"`
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
		Subject  string `json:"subject"`
		Message  string `json:"message"`
		Fix      string `json:"fix"`
		Source   string `json:"source"`
	} `json:"findings"`
	Failed bool `json:"failed"`
}

// runCheck runs the real binary, keeping stdout apart from stderr.
func runCheck(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(daemon(t), append([]string{"check"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// TestCheckCommand drives `ovfmount check` on a package every importer
// takes and on one whose descriptor is not first: exit codes 0, 1 and 2,
// the text report and the --json shape.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	raw := make([]byte, 1<<20)
	var vmdk bytes.Buffer
	if err := vmdkwriter.Write(&vmdk, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	desc := testpkg.F("app.ovf", fmt.Sprintf(`<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
<References><File ovf:id="f1" ovf:href="disk1.vmdk" ovf:size="%d"/></References>
<DiskSection><Info>disks</Info><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="%d"/></DiskSection>
</Envelope>`, vmdk.Len(), len(raw)))
	disk := testpkg.File{Name: "disk1.vmdk", Data: vmdk.Bytes()}
	mf := testpkg.Manifest("SHA256", desc, disk).Named("app.mf")
	good := filepath.Join(dir, "good.ova")
	testpkg.WriteOVA(t, good, desc, mf, disk)
	bad := filepath.Join(dir, "bad.ova")
	testpkg.WriteOVA(t, bad, disk, desc, mf) // the descriptor is not first

	code, out, errOut := runCheck(t, good)
	if code != 0 || !strings.Contains(out, "vsphere: OK") || !strings.Contains(out, "spec: OK") {
		t.Errorf("good package: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runCheck(t, bad)
	if code != 1 || !strings.Contains(out, "vsphere: FAIL") || !strings.Contains(out, "descriptor-first") || !strings.Contains(out, "fix: ") {
		t.Errorf("bad package: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runCheck(t, "--json", bad)
	var r checkJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 {
		t.Fatalf("--json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if !r.Failed || len(r.Targets) != 6 || len(r.Findings) == 0 || r.Archive == "" {
		t.Errorf("--json report: %+v", r)
	}
	rules := map[string]string{}
	for _, f := range r.Findings {
		if f.Fix == "" || f.Source == "" || f.Message == "" || f.Subject == "" {
			t.Errorf("finding lacks a field: %+v", f)
		}
		rules[f.Target+" "+f.Rule] = f.Severity
	}
	if rules["vsphere descriptor-first"] != "fail" || rules["spec descriptor-first"] != "fail" {
		t.Errorf("findings: %v", rules)
	}
	for _, tg := range r.Targets {
		if tg.Name == "vsphere" && (tg.Verdict != "fail" || tg.Failures == 0) {
			t.Errorf("vsphere's verdict: %+v", tg)
		}
	}

	// Only virt-v2v, which extracts the archive whatever the order: it
	// passes.
	if code, out, errOut = runCheck(t, "--target", "virt-v2v", bad); code != 0 || !strings.Contains(out, "virt-v2v: OK") || strings.Contains(out, "vsphere") {
		t.Errorf("--target virt-v2v: exit %d\n%s%s", code, out, errOut)
	}

	// Usage errors: an unknown target, a missing archive.
	if code, _, errOut = runCheck(t, "--target", "hyperv", good); code != 2 || !strings.Contains(errOut, "unknown target") {
		t.Errorf("--target hyperv: exit %d, %s", code, errOut)
	}
	if code, _, errOut = runCheck(t, filepath.Join(dir, "absent.ova")); code != 2 {
		t.Errorf("a missing archive: exit %d, %s", code, errOut)
	}
}
