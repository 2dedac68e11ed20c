package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var alice = Reader{Pid: 100, Uid: 1000, Gid: 1000}
var bob = Reader{Pid: 200, Uid: 0, Gid: 0}

// started opens a new log in a temporary folder and starts a session.
func started(t *testing.T, path string) *Log {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.procs.read = func(tid uint32) (uint32, bool) { return tid, true } // the tests' readers are made up
	if err := l.Start(Start{Archive: "app.ova", Identity: "sha256:abc", Mountpoint: "/mnt/app", Program: "ovfmount test"}, nil); err != nil {
		t.Fatal(err)
	}
	return l
}

func verifyFile(t *testing.T, path, head string) *Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Verify(f, head)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.SplitAfter(string(b), "\n")
	return out[:len(out)-1] // after the last newline: ""
}

func records(t *testing.T, path string) []Record {
	t.Helper()
	var out []Record
	for _, l := range lines(t, path) {
		var r Record
		if err := json.Unmarshal([]byte(strings.TrimSuffix(l, "\n")), &r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func fileRead(rep *Report, path string) *FileRead {
	for i := range rep.Files {
		if rep.Files[i].Path == path {
			return &rep.Files[i]
		}
	}
	return nil
}

// TestChainAndCoalescing: a session's lines chain from a start line, a
// file's reads are coalesced into merged ranges with their bytes, times
// and readers, and verify reports them and the head Close returned.
func TestChainAndCoalescing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := started(t, path)
	f, err := l.Open("disks/disk1.vmdk.raw", alice)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // sequential: one range
		if err := f.Read(int64(i)*4096, 4096, alice); err != nil {
			t.Fatal(err)
		}
	}
	f.Read(1<<20, 512, bob)     // apart
	f.Read(1<<20+512, 512, bob) // adjacent: merged
	f.Read(8192, 100, alice)    // inside the first: merged
	f.Release()
	g, _ := l.Open("appliance.ovf", bob)
	g.Read(0, 1234, bob)
	g.Release()
	head, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}

	recs := records(t, path)
	types := []string{}
	for i, r := range recs {
		types = append(types, r.Type)
		if r.Seq != uint64(i) {
			t.Errorf("line %d has seq %d", i+1, r.Seq)
		}
	}
	if got := strings.Join(types, " "); got != "start open read close open read close stop" {
		t.Fatalf("line types: %s", got)
	}
	read := recs[2]
	if want := [][2]int64{{0, 40960}, {1 << 20, 1024}}; !equalPairs(read.Ranges, want) {
		t.Errorf("ranges %v, want %v", read.Ranges, want)
	}
	if read.Bytes != 40960+1024+100 || len(read.Readers) != 2 || read.First == nil || read.Last.Before(*read.First) {
		t.Errorf("read line: %+v", read)
	}
	if recs[1].Reader == nil || *recs[1].Reader != alice || recs[1].Path != "disks/disk1.vmdk.raw" {
		t.Errorf("open line: %+v", recs[1])
	}

	rep := verifyFile(t, path, head)
	if !rep.Intact || rep.Problem != nil || rep.Lines != 8 || rep.Head != head {
		t.Fatalf("verify: %+v", rep)
	}
	if len(rep.Sessions) != 1 || rep.Sessions[0].Stop == nil || rep.Sessions[0].Opens != 2 || len(rep.Notes) != 0 {
		t.Errorf("sessions %+v, notes %v", rep.Sessions, rep.Notes)
	}
	disk := fileRead(rep, "disks/disk1.vmdk.raw")
	if disk == nil || disk.DistinctBytes != 40960+1024 || disk.Opens != 1 || len(disk.Readers) != 2 {
		t.Errorf("disk summary: %+v", disk)
	}
	if ovf := fileRead(rep, "appliance.ovf"); ovf == nil || !equalPairs(ovf.Ranges, [][2]int64{{0, 1234}}) {
		t.Errorf("ovf summary: %+v", ovf)
	}
}

func equalPairs(a, b [][2]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSpans: random adds against a bitmap of the bytes covered.
func TestSpans(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := range 200 {
		var s spans
		covered := make([]bool, 4096)
		for range 1 + round%50 {
			off, n := rng.Int63n(4000), rng.Int63n(96)
			s.add(off, n)
			for i := off; i < off+n; i++ {
				covered[i] = true
			}
		}
		var want spans
		for i := 0; i < len(covered); i++ {
			if covered[i] {
				j := i
				for j < len(covered) && covered[j] {
					j++
				}
				want = append(want, span{int64(i), int64(j)})
				i = j
			}
		}
		if len(s) != len(want) {
			t.Fatalf("round %d: %v, want %v", round, s, want)
		}
		for i := range s {
			if s[i] != want[i] {
				t.Fatalf("round %d: %v, want %v", round, s, want)
			}
		}
	}
}

// TestLinesPerThousandRanges: a random reader's ranges are written a line
// per 1,000, and a reader more than a line holds starts a new line.
func TestLinesPerThousandRanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := started(t, path)
	f, _ := l.Open("disks/disk1.vmdk.raw", alice)
	for i := range 2500 {
		f.Read(int64(i)*8192, 4096, alice) // never adjacent
	}
	for i := range maxReaders + 1 {
		f.Read(1<<40, 1, Reader{Pid: uint32(1000 + i)})
	}
	f.Release()
	if _, err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var counts []int
	for _, r := range records(t, path) {
		if r.Type == TypeRead {
			counts = append(counts, len(r.Ranges))
			if len(r.Readers) > maxReaders {
				t.Errorf("a line with %d readers", len(r.Readers))
			}
		}
	}
	if len(counts) != 4 || counts[0] != 1000 || counts[1] != 1000 || counts[2] != 501 || counts[3] != 1 {
		t.Errorf("ranges per read line: %v", counts)
	}
	rep := verifyFile(t, path, "")
	if d := fileRead(rep, "disks/disk1.vmdk.raw"); !rep.Intact || d == nil || len(d.Ranges) != 2501 || len(d.Readers) != maxReaders+2 {
		t.Errorf("verify: intact %v, %+v", rep.Intact, rep.Problem)
	}
}

// TestPendingWrittenEverySecond: a file that stays open has its ranges
// written and fsynced by the log's own clock, not only at close.
func TestPendingWrittenEverySecond(t *testing.T) {
	saved := syncEvery
	syncEvery = 20 * time.Millisecond
	defer func() { syncEvery = saved }()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := started(t, path)
	f, _ := l.Open("a", alice)
	f.Read(0, 10, alice)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(readString(path), `"type":"read"`) {
		if time.Now().After(deadline) {
			t.Fatal("the open file's read line was not written within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.Release()
	l.Close()
	if rep := verifyFile(t, path, ""); !rep.Intact {
		t.Fatalf("%+v", rep.Problem)
	}
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestAppendContinues: a second mount appends its session to the chain;
// an unclosed file is closed "unclosed" by Close; a session cut short (no
// stop line) is noted, not a break.
func TestAppendContinues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := started(t, path)
	f, _ := l.Open("a", alice)
	f.Read(0, 10, alice)
	l.Close() // f never released
	l = started(t, path)
	g, _ := l.Open("a", bob)
	g.Read(5, 10, bob)
	g.Release()
	head, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, path)
	if recs[3].Type != TypeClose || !recs[3].Unclosed {
		t.Errorf("line 4: %+v", recs[3])
	}
	rep := verifyFile(t, path, head)
	if !rep.Intact || len(rep.Sessions) != 2 || rep.Sessions[1].Line != 6 {
		t.Fatalf("verify: %+v %+v", rep.Problem, rep.Sessions)
	}
	if a := fileRead(rep, "a"); a == nil || !equalPairs(a.Ranges, [][2]int64{{0, 15}}) || a.Bytes != 20 || a.Opens != 2 {
		t.Errorf("a: %+v", a)
	}

	// A session without its stop line: killed, or cut after a line.
	all := lines(t, path)
	cut := filepath.Join(t.TempDir(), "cut.log")
	os.WriteFile(cut, []byte(strings.Join(all[:len(all)-1], "")), 0o600)
	rep = verifyFile(t, cut, "")
	if !rep.Intact || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "no stop line") {
		t.Errorf("cut after a line: intact %v, notes %v", rep.Intact, rep.Notes)
	}
	// And a mount appends to it, continuing the chain.
	l = started(t, cut)
	l.Close()
	if rep := verifyFile(t, cut, ""); !rep.Intact || len(rep.Sessions) != 3 {
		t.Errorf("appended after a cut: %+v", rep.Problem)
	}
}

// TestTampering: a line edited, removed, moved or cut, and an end cut or
// edited when the head was kept, are each found and named.
func TestTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := started(t, path)
	for i := range 3 {
		f, _ := l.Open("files/vol/etc/passwd", Reader{Pid: uint32(i)})
		f.Read(int64(i)*100, 100, Reader{Pid: uint32(i)})
		f.Release()
	}
	head, _ := l.Close()
	good := lines(t, path) // 11 lines: start, 3 x (open read close), stop
	if len(good) != 11 {
		t.Fatalf("%d lines", len(good))
	}
	tamper := func(name string, ls []string, tail string) *Report {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(strings.Join(ls, "")+tail), 0o600)
		return verifyFile(t, p, head)
	}
	without := func(i int) []string { return append(append([]string{}, good[:i]...), good[i+1:]...) }
	edited := append([]string{}, good...)
	edited[2] = strings.Replace(edited[2], `"bytes":100`, `"bytes":10`, 1)
	swapped := append([]string{}, good...)
	swapped[4], swapped[5] = swapped[5], swapped[4]
	editedLast := append([]string{}, good...)
	editedLast[10] = strings.Replace(editedLast[10], `"stop"`, `"stop" `, 1)
	for _, tc := range []struct {
		name string
		ls   []string
		tail string
		line int
		kind string
	}{
		{"edited", edited, "", 3, KindEdited},
		{"removed", without(5), "", 6, KindRemoved},
		{"first removed", without(0), "", 1, KindRemoved},
		{"reordered", swapped, "", 5, KindReordered},
		{"cut mid-line", good[:7], good[7][:20], 8, KindTruncated},
		{"end cut", good[:9], "", 9, KindHead},
		{"last line edited", editedLast, "", 11, KindHead},
		{"not JSON", append(append([]string{}, good[:4]...), append([]string{"garbage\n"}, good[4:]...)...), "", 5, KindEdited},
		{"empty", nil, "", 1, KindTruncated},
	} {
		rep := tamper(tc.name, tc.ls, tc.tail)
		if rep.Intact || rep.Problem == nil || rep.Problem.Kind != tc.kind || rep.Problem.Line != tc.line {
			t.Errorf("%s: intact %v, problem %+v; want %s at line %d", tc.name, rep.Intact, rep.Problem, tc.kind, tc.line)
		}
	}
	if rep := tamper("untouched", good, ""); !rep.Intact {
		t.Errorf("the untouched copy: %+v", rep.Problem)
	}
	// A log appended to after the head was kept still has that head.
	l = started(t, path)
	l.Close()
	if rep := verifyFile(t, path, head); !rep.Intact {
		t.Errorf("appended after the head was kept: %+v", rep.Problem)
	}
}

// TestRefusesDamagedTail: a log cut mid-line, or a file that is not an
// audit log, is not appended to; a log in use by another process is not
// opened.
func TestRefusesDamagedTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := started(t, path)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second open while the first holds it: %v", err)
	}
	l.Close()
	good := readString(path)

	cut := filepath.Join(dir, "cut.log")
	os.WriteFile(cut, []byte(good[:len(good)-5]), 0o600)
	if _, err := Open(cut); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("a log cut mid-line: %v", err)
	}
	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(other, []byte("my notes\n"), 0o600)
	if _, err := Open(other); err == nil || !strings.Contains(err.Error(), "not an ovfmount audit log") {
		t.Errorf("a text file: %v", err)
	}
	if got := readString(other); got != "my notes\n" {
		t.Errorf("the refused file was changed: %q", got)
	}
	if _, err := Open(dir); err == nil {
		t.Error("a folder was opened as a log")
	}
	// A log opened for a mount that never started leaves no file.
	unused := filepath.Join(dir, "unused.log")
	l, err := Open(unused)
	if err != nil {
		t.Fatal(err)
	}
	if head, err := l.Close(); head != "" || err != nil {
		t.Errorf("Close without Start: %q, %v", head, err)
	}
	if _, err := os.Stat(unused); !os.IsNotExist(err) {
		t.Errorf("the unused log was left behind: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing", "audit.log")); err == nil {
		t.Error("a log in a missing folder was opened")
	}
}

// failSink fails every write or fsync once broken is set.
type failSink struct {
	mu     sync.Mutex
	w      sink
	broken bool
	fsync  bool // fail fsync, not write
}

func (s *failSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken && !s.fsync {
		return 0, errors.New("no space left on device")
	}
	return s.w.Write(p)
}

func (s *failSink) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken && s.fsync {
		return errors.New("input/output error")
	}
	return s.w.Sync()
}

// TestFailureRefusesReads: after a write or an fsync of the log fails,
// every read and open fails, the failure is reported once, and Close says
// how many lines were lost.
func TestFailureRefusesReads(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "audit.log")
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		l.procs.read = func(tid uint32) (uint32, bool) { return tid, true }
		s := &failSink{w: l.w, fsync: fsync}
		l.w = s
		reported := make(chan error, 2)
		if err := l.Start(Start{Archive: "a.ova"}, func(err error) { reported <- err }); err != nil {
			t.Fatal(err)
		}
		f, _ := l.Open("a", alice)
		if err := f.Read(0, 10, alice); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		s.broken = true
		s.mu.Unlock()
		l.pending()
		if err := l.flush(false); err == nil {
			t.Fatal("flush with a failing sink succeeded")
		}
		if err := f.Read(10, 10, alice); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("fsync %v: a read after the failure: %v", fsync, err)
		}
		if _, err := l.Open("b", alice); err == nil {
			t.Errorf("fsync %v: an open after the failure succeeded", fsync)
		}
		select {
		case err := <-reported:
			if err == nil {
				t.Error("reported a nil error")
			}
		case <-time.After(5 * time.Second):
			t.Error("the failure was not reported")
		}
		f.Release()
		if _, err := l.Close(); err == nil || !strings.Contains(err.Error(), "never written") {
			t.Errorf("fsync %v: Close: %v", fsync, err)
		}
		// Nothing after the failure reached the file: it ends on a whole
		// line, and what it holds verifies.
		if rep := verifyFile(t, path, ""); !rep.Intact {
			t.Errorf("fsync %v: %+v", fsync, rep.Problem)
		}
	}
}

// TestConcurrentReads: readers of several files at once, under the race
// detector, give a log whose ranges are exactly the reads.
func TestConcurrentReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := started(t, path)
	var wg sync.WaitGroup
	want := map[string]*spans{}
	var mu sync.Mutex
	for i := range 8 {
		name := []string{"a", "b", "c"}[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := Reader{Pid: uint32(i)}
			f, err := l.Open(name, who)
			if err != nil {
				t.Error(err)
				return
			}
			rng := rand.New(rand.NewSource(int64(i)))
			for range 500 {
				off, n := rng.Int63n(1<<20), int(rng.Int63n(8192)+1)
				if err := f.Read(off, n, who); err != nil {
					t.Error(err)
				}
				mu.Lock()
				if want[name] == nil {
					want[name] = &spans{}
				}
				want[name].add(off, int64(n))
				mu.Unlock()
			}
			f.Release()
		}()
	}
	wg.Wait()
	l.Close()
	rep := verifyFile(t, path, "")
	if !rep.Intact {
		t.Fatal(rep.Problem)
	}
	for name, w := range want {
		got := fileRead(rep, name)
		if got == nil || !equalPairs(got.Ranges, w.pairs()) {
			t.Errorf("%s: ranges differ from the reads", name)
		}
	}
}

// TestNonUTF8Path: a guest name that is not UTF-8 keeps its bytes.
func TestNonUTF8Path(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := started(t, path)
	f, _ := l.Open("files/vol/caf\xe9", alice)
	f.Read(0, 1, alice)
	f.Release()
	l.Close()
	rep := verifyFile(t, path, "")
	if !rep.Intact || len(rep.Files) != 1 || rep.Files[0].PathHex != "66696c65732f766f6c2f636166e9" {
		t.Errorf("%+v", rep.Files)
	}
	if !bytes.Contains([]byte(readString(path)), []byte(`"pathHex"`)) {
		t.Error("no pathHex in the log")
	}
}

// TestThreadsAreProcesses: a thread's id, as FUSE gives it, is recorded as
// its process's id; a thread that is gone keeps its id.
func TestThreadsAreProcesses(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(syscall.Gettid())
	if pid, ok := tgidOf(tid); !ok || pid != uint32(os.Getpid()) {
		t.Errorf("tgidOf(%d) = %d, %v; want %d", tid, pid, ok, os.Getpid())
	}
	p := newProcesses(time.Now)
	if got := p.reader(Reader{Pid: tid, Uid: 7}); got != (Reader{Pid: uint32(os.Getpid()), Uid: 7}) {
		t.Errorf("reader of this thread: %+v", got)
	}
	if got := p.reader(Reader{Pid: 0}); got.Pid != 0 {
		t.Errorf("the kernel's pid 0 became %d", got.Pid)
	}
	p.read = func(uint32) (uint32, bool) { return 0, false }
	if got := p.reader(Reader{Pid: 1 << 30}); got.Pid != 1<<30 {
		t.Errorf("a gone thread: %+v", got)
	}
}
