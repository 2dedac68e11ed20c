package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/audit"
)

// TestAuditVerifyCommand: audit verify's exit codes, text and JSON on a
// log written by package audit, intact and with a line removed, and its
// usage errors.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "reads.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(audit.Start{Archive: "/srv/app.ova", Mountpoint: "/mnt/app"}, nil); err != nil {
		t.Fatal(err)
	}
	f, _ := l.Open("disks/disk1.vmdk.raw", audit.Reader{})
	f.Read(4096, 8192, audit.Reader{})
	f.Read(0, 4096, audit.Reader{})
	f.Release()
	head, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runArgs("audit", "verify", path)
	if code != exitOK || !strings.Contains(out, "intact, 5 lines, 1 session") || !strings.Contains(out, "disks/disk1.vmdk.raw: 0+12288") ||
		!strings.Contains(out, head) || errOut != "" {
		t.Errorf("text: exit %d, %q, %q", code, out, errOut)
	}
	code, out, _ = runArgs("audit", "verify", "--json", "--head", "sha256:"+strings.ToUpper(head), path)
	var rep struct {
		File   string `json:"file"`
		Intact bool   `json:"intact"`
		Files  []struct {
			Path          string     `json:"path"`
			DistinctBytes int64      `json:"distinctBytes"`
			Ranges        [][2]int64 `json:"ranges"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK || !rep.Intact || rep.File != path ||
		len(rep.Files) != 1 || rep.Files[0].DistinctBytes != 12288 || len(rep.Files[0].Ranges) != 1 {
		t.Errorf("json: exit %d, %v, %s", code, err, out)
	}

	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	broken := filepath.Join(dir, "broken.log")
	os.WriteFile(broken, []byte(strings.Join(append(lines[:2:2], lines[3:]...), "")), 0o600)
	code, out, _ = runArgs("audit", "verify", broken)
	if code != exitVerify || !strings.Contains(out, "BROKEN at line 3 (removed)") {
		t.Errorf("a line removed: exit %d, %q", code, out)
	}

	for _, args := range [][]string{
		{"audit"},
		{"audit", "check", path},
		{"audit", "verify"},
		{"audit", "verify", "--head", "nothex", path},
		{"audit", "verify", filepath.Join(dir, "missing.log")},
		{"audit", "verify", dir},
	} {
		if code, _, _ := runArgs(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
