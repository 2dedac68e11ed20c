package integration

import (
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// auditReport is what audit verify --json prints, as far as the tests
// read it.
type auditReport struct {
	Intact  bool   `json:"intact"`
	Lines   int    `json:"lines"`
	Head    string `json:"head"`
	Problem *struct {
		Line int    `json:"line"`
		Kind string `json:"kind"`
	} `json:"problem"`
	Sessions []struct {
		Archive string `json:"archive"`
		Stop    string `json:"stop"`
	} `json:"sessions"`
	Files []struct {
		Path    string     `json:"path"`
		Opens   int        `json:"opens"`
		Bytes   int64      `json:"bytes"`
		Ranges  [][2]int64 `json:"ranges"`
		Readers []struct {
			Pid, Uid, Gid uint32
		} `json:"readers"`
	} `json:"files"`
}

func auditVerify(t *testing.T, log string, args ...string) (int, *auditReport) {
	t.Helper()
	code, out := runOvfmount(t, append(append([]string{"audit", "verify", "--json"}, args...), log)...)
	var rep auditReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("audit verify --json %s: exit %d, %v:\n%s", log, code, err, out)
	}
	return code, &rep
}

// merge sorts and merges [offset, length] ranges, as the log does.
func merge(rs [][2]int64) [][2]int64 {
	sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
	var out [][2]int64
	for _, r := range rs {
		if k := len(out); k > 0 && r[0] <= out[k-1][0]+out[k-1][1] {
			out[k-1][1] = max(out[k-1][1], r[0]+r[1]-out[k-1][0])
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestAuditLog mounts with --audit-log and -o direct_io (so that the
// kernel passes each read as it was made) while goroutines read different
// files and ranges at once: stored members and a streamOptimized VMDK's
// decoded view. audit verify must find the chain intact and report exactly
// the ranges read, with this process as the only reader (the kernel gives
// thread ids; the log records processes) and the head the daemon logged. A
// second mount, with the page cache, appends to the same log; a file it
// reads whole is covered whole. Then a line edited, and a line removed, in
// copies of the log are found and named.
func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	content := make([]byte, 4<<20)
	rand.New(rand.NewSource(5)).Read(content[:3<<20]) // the last MiB stays zeros
	os.WriteFile(raw, content, 0o644)
	vmdk := filepath.Join(dir, "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	members := map[string]string{"disk1.vmdk": vmdk}
	sizes := map[string]int{"a.bin": 1<<20 + 333, "b.bin": 200000, "c.bin": 5000, "whole.bin": 300000}
	for name, size := range sizes {
		b := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(b)
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		members[name] = p
	}
	archive := packOVA(t, members, "disk1.vmdk")
	log := filepath.Join(t.TempDir(), "reads.log")

	m := mountArchive(t, archive, "--audit-log", log, "-o", "direct_io")
	files := []string{"a.bin", "b.bin", "c.bin", "disks/disk1.vmdk.raw"}
	var mu sync.Mutex
	want := map[string][][2]int64{}
	var wg sync.WaitGroup
	for i := range 8 {
		name := files[i%len(files)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(m.path(name))
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			st, _ := f.Stat()
			rng := rand.New(rand.NewSource(int64(i)))
			for range 40 {
				off := rng.Int63n(st.Size())
				n := int(min(rng.Int63n(200000)+1, st.Size()-off))
				got := pread(t, f, n, off)
				mu.Lock()
				want[name] = append(want[name], [2]int64{off, int64(len(got))})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	m.unmount(t)
	head := regexp.MustCompile(`"auditLogHead":"([0-9a-f]{64})"`).FindStringSubmatch(readFile(m.logFile))
	if head == nil {
		t.Fatalf("the daemon did not log the audit log's head; log:\n%s", readFile(m.logFile))
	}

	m2 := mountArchive(t, archive, "--audit-log", log)
	if b, err := os.ReadFile(m2.path("whole.bin")); err != nil || len(b) != sizes["whole.bin"] {
		t.Fatalf("whole.bin: %d bytes, %v", len(b), err)
	}
	m2.unmount(t)

	code, rep := auditVerify(t, log, "--head", head[1])
	if code != 0 || !rep.Intact || rep.Problem != nil || len(rep.Sessions) != 2 || rep.Sessions[0].Stop == "" || rep.Sessions[1].Stop == "" {
		t.Fatalf("audit verify: exit %d, %+v", code, rep)
	}
	me := os.Getpid()
	byPath := map[string]int{}
	for i, f := range rep.Files {
		byPath[f.Path] = i
		if len(f.Readers) != 1 || f.Readers[0].Pid != uint32(me) || f.Readers[0].Uid != uint32(os.Getuid()) {
			t.Errorf("%s: readers %+v, want this process (pid %d) alone", f.Path, f.Readers, me)
		}
	}
	for name, reads := range want {
		i, ok := byPath[name]
		if !ok {
			t.Errorf("%s: not in the report", name)
			continue
		}
		got, exp := rep.Files[i].Ranges, merge(reads)
		if len(got) != len(exp) {
			t.Errorf("%s: %d ranges reported, %d read", name, len(got), len(exp))
			continue
		}
		for k := range got {
			if got[k] != exp[k] {
				t.Errorf("%s: range %d is %v, read %v", name, k, got[k], exp[k])
				break
			}
		}
		if rep.Files[i].Opens != 2 {
			t.Errorf("%s: %d opens, want 2", name, rep.Files[i].Opens)
		}
	}
	if i, ok := byPath["whole.bin"]; !ok || len(rep.Files[i].Ranges) != 1 || rep.Files[i].Ranges[0] != [2]int64{0, int64(sizes["whole.bin"])} {
		t.Errorf("whole.bin, read whole through the page cache: %+v", rep.Files)
	}
	if _, ok := byPath["app.ovf"]; ok {
		t.Error("app.ovf was never read but is in the report")
	}

	// Tampering with copies of the log.
	b, _ := os.ReadFile(log)
	lines := strings.SplitAfter(string(b), "\n")
	lines = lines[:len(lines)-1]
	edit := -1
	for i, l := range lines {
		if strings.Contains(l, `"type":"read"`) && strings.Contains(l, `"path":"b.bin"`) {
			edit = i
			break
		}
	}
	if edit < 0 {
		t.Fatal("no read line of b.bin")
	}
	edited := append([]string{}, lines...)
	edited[edit] = regexp.MustCompile(`"ranges":\[\[\d`).ReplaceAllStringFunc(edited[edit], func(s string) string {
		if strings.HasSuffix(s, "9") {
			return s[:len(s)-1] + "8"
		}
		return s[:len(s)-1] + "9"
	})
	if edited[edit] == lines[edit] {
		t.Fatalf("the edit changed nothing in %q", lines[edit])
	}
	removed := append(append([]string{}, lines[:edit]...), lines[edit+1:]...)
	for _, tc := range []struct {
		name  string
		lines []string
		line  int
		kind  string
	}{
		{"edited", edited, edit + 1, "edited"},
		{"removed", removed, edit + 1, "removed"},
	} {
		p := filepath.Join(t.TempDir(), tc.name+".log")
		os.WriteFile(p, []byte(strings.Join(tc.lines, "")), 0o600)
		code, rep := auditVerify(t, p)
		if code != 1 || rep.Intact || rep.Problem == nil || rep.Problem.Kind != tc.kind || rep.Problem.Line != tc.line {
			t.Errorf("%s line %d: exit %d, problem %+v; want exit 1, %s at line %d", tc.name, edit+1, code, rep.Problem, tc.kind, tc.line)
		}
	}
	if code, out := runOvfmount(t, "audit", "verify", log); code != 0 || !strings.Contains(out, "intact") || !strings.Contains(out, "b.bin") {
		t.Errorf("audit verify (text): exit %d:\n%s", code, out)
	}
}

// TestAuditLogRefused: a mount whose audit log cannot be opened, or whose
// log is damaged at its end, is refused with exit code 2 and a message
// naming the log, and nothing is mounted.
func TestAuditLogRefused(t *testing.T) {
	testutil.RequireFUSE(t)
	dir := t.TempDir()
	payload := filepath.Join(dir, "x.bin")
	os.WriteFile(payload, []byte("x"), 0o644)
	archive := packOVA(t, map[string]string{"x.bin": payload})
	damaged := filepath.Join(dir, "damaged.log")
	os.WriteFile(damaged, []byte(`{"seq":0,"prev":"","type":"start"}`+"\n"+`{"seq":1,"pr`), 0o600)
	for _, tc := range []struct{ name, log, says string }{
		{"missing folder", filepath.Join(dir, "no", "such", "reads.log"), "no such file"},
		{"a folder", dir, "audit-log"},
		{"damaged end", damaged, "cut short"},
	} {
		mnt := t.TempDir()
		code, out := runOvfmount(t, "--audit-log", tc.log, archive, mnt)
		if code != 2 || !strings.Contains(out, tc.says) {
			t.Errorf("%s: exit %d, %q; want 2 and %q", tc.name, code, out, tc.says)
		}
		if mounted(t, mnt) {
			t.Errorf("%s: mounted anyway", tc.name)
			exec.Command("fusermount3", "-u", mnt).Run()
		}
	}
	if b, _ := os.ReadFile(damaged); !strings.HasSuffix(string(b), `"pr`) {
		t.Error("the damaged log was written to")
	}
}

// TestAuditLogSurvivesKill: a file kept open has its reads written by
// the log's own clock (within about a second), so a kill -9 of the daemon
// loses them not; the log it leaves verifies, with a note that its session
// never stopped, and the next mount continues its chain.
func TestAuditLogSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	payload := make([]byte, 300000)
	rand.New(rand.NewSource(3)).Read(payload)
	for _, name := range []string{"a.bin", "b.bin"} {
		os.WriteFile(filepath.Join(dir, name), payload, 0o644)
	}
	archive := packOVA(t, map[string]string{"a.bin": filepath.Join(dir, "a.bin"), "b.bin": filepath.Join(dir, "b.bin")})
	log := filepath.Join(t.TempDir(), "reads.log")

	m := mountArchive(t, archive, "--audit-log", log, "-o", "direct_io")
	f, err := os.Open(m.path("a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	pread(t, f, 4096, 0)
	pread(t, f, 4096, 100000)
	if !waitFor(5*time.Second, func() bool {
		return strings.Contains(readFile(log), `"type":"read","time"`) && strings.Contains(readFile(log), `[100000,4096]`)
	}) {
		t.Fatalf("the open file's reads were not written within 5 s; log:\n%s", readFile(log))
	}
	pid := findDaemon(m.dir)
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	f.Close()
	exec.Command("fusermount3", "-u", "-z", m.dir).Run()

	code, rep := auditVerify(t, log)
	if code != 0 || !rep.Intact || len(rep.Sessions) != 1 || rep.Sessions[0].Stop != "" || len(rep.Files) != 1 ||
		len(rep.Files[0].Ranges) != 2 || rep.Files[0].Ranges[1] != [2]int64{100000, 4096} {
		t.Fatalf("after kill -9: exit %d, %+v", code, rep)
	}

	m2 := mountArchive(t, archive, "--audit-log", log)
	if _, err := os.ReadFile(m2.path("b.bin")); err != nil {
		t.Fatal(err)
	}
	m2.unmount(t)
	code, rep = auditVerify(t, log)
	if code != 0 || !rep.Intact || len(rep.Sessions) != 2 || rep.Sessions[1].Stop == "" || len(rep.Files) != 2 {
		t.Errorf("appended after the kill: exit %d, %+v", code, rep)
	}
}
