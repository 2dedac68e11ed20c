package integration

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/sample"
	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/internal/vmdkwriter"
)

// smallOVA writes a tiny archive with one member of n random-ish bytes.
func smallOVA(t *testing.T, n int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "small.ova")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := tar.NewWriter(f)
	data := bytes.Repeat([]byte("ovfmount "), n/9+1)[:n]
	w.WriteHeader(&tar.Header{Name: "appliance.ovf", Mode: 0o644, Size: 11, Typeflag: tar.TypeReg})
	w.Write([]byte("<Envelope/>"))
	w.WriteHeader(&tar.Header{Name: "disk1.vmdk", Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg})
	w.Write(data)
	w.Close()
	f.Close()
	return p
}

func TestBadInputs(t *testing.T) {
	testutil.RequireFUSE(t)
	good := smallOVA(t, 100)
	empty := t.TempDir()
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	notTar := filepath.Join(t.TempDir(), "picture.ova")
	os.WriteFile(notTar, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 2000)...), 0o644)
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, nil, 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing archive", []string{"/nonexistent/app.ova", empty}, 2, "/nonexistent/app.ova: no such file"},
		{"not a tar", []string{notTar, empty}, 2, notTar + ": not an OVA: a PNG image"},
		{"missing mountpoint", []string{good, "/nonexistent/mnt"}, 10, "mountpoint /nonexistent/mnt does not exist"},
		{"non-empty mountpoint", []string{good, full}, 10, "is not empty"},
		{"mountpoint is a file", []string{good, aFile}, 10, "is not a directory"},
		{"unknown option", []string{"-o", "bogus", good, empty}, 2, `unknown mount option "bogus"`},
		{"bad number", []string{"-o", "uid=me", good, empty}, 2, `"uid=me" needs a non-negative number`},
		{"one argument", []string{good}, 2, "need ARCHIVE and MOUNTPOINT"},
		{"bad log level", []string{"--log-level", "loud", good, empty}, 2, "--log-level must be"},
		{"bad log file", []string{"--log-file", "/nonexistent/dir/log", good, empty}, 2, "--log-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runOvfmount(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.msg) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, out, tc.code, tc.msg)
			}
			if !strings.HasPrefix(out, "ovfmount: ") {
				t.Errorf("the error does not start with the program name: %q", out)
			}
			if mounted(t, empty) {
				t.Error("a failed mount left a mount behind")
			}
		})
	}
	t.Run("unreadable archive", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to run the check as another user")
		}
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		locked := filepath.Join(dir, "locked.ova")
		data, _ := os.ReadFile(good)
		os.WriteFile(locked, data, 0o600)
		mnt := filepath.Join(dir, "mnt")
		os.Mkdir(mnt, 0o777)
		cmd := exec.Command(daemon(t), locked, mnt)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), locked+": permission denied") {
			t.Errorf("exit %v, output %q; want exit 2 and permission denied", err, out)
		}
	})
	t.Run("help and version", func(t *testing.T) {
		for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
			code, out := runOvfmount(t, args...)
			if code != 0 || !strings.Contains(out, "Exit codes:") || !strings.Contains(out, "allow_other") {
				t.Errorf("%v: exit %d, %q", args, code, out)
			}
		}
		if code, out := runOvfmount(t, "version"); code != 0 || !strings.HasPrefix(out, "ovfmount ") {
			t.Errorf("version: exit %d, %q", code, out)
		}
	})
}

// fgMount is a daemon started by foreground.
type fgMount struct {
	cmd    *exec.Cmd
	dir    string
	stderr *syncBuffer
	done   chan error    // the result of Wait, for exit
	exited chan struct{} // closed once the daemon has exited
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// foreground starts `ovfmount -f` and waits until the daemon is ready: its
// mount is listed and it has logged "mounted". The mount is listed as soon
// as mount(2) returns, before the daemon's own start-up requests to it
// (go-fuse's poll probe, the read-ahead set-up) are answered; a SIGKILL in
// that window can leave the daemon unkillable (see stuck_test.go), so
// tests that kill it must not start earlier.
func foreground(t *testing.T, archive string) *fgMount {
	t.Helper()
	testutil.RequireFUSE(t)
	m := &fgMount{dir: t.TempDir(), stderr: &syncBuffer{}, done: make(chan error, 1), exited: make(chan struct{})}
	m.cmd = exec.Command(daemon(t), "-f", "--log-format=json", archive, m.dir)
	m.cmd.Stderr = m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		m.done <- m.cmd.Wait()
		close(m.exited)
	}()
	ready := func() bool {
		return strings.Contains(m.stderr.String(), `"message":"mounted"`) && mounted(t, m.dir)
	}
	if !waitFor(10*time.Second, func() bool { return ready() || m.hasExited() }) || !ready() {
		m.cmd.Process.Kill()
		t.Fatalf("the daemon did not become ready (mounted: %v); stderr:\n%s", mounted(t, m.dir), m.stderr)
	}
	t.Cleanup(func() {
		if !m.hasExited() {
			m.cmd.Process.Kill()
		}
		if mounted(t, m.dir) {
			exec.Command("fusermount3", "-u", "-z", m.dir).Run()
		}
	})
	return m
}

func (m *fgMount) hasExited() bool {
	select {
	case <-m.exited:
		return true
	default:
		return false
	}
}

// exit waits for the daemon to exit and returns its code. If it does not
// exit in time, the test fails with where its threads are stuck, and the
// mount's FUSE connection is aborted so that the process can go.
func (m *fgMount) exit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-m.done:
		return m.cmd.ProcessState.ExitCode()
	case <-time.After(d):
	}
	report := threadReport(m.cmd.Process.Pid)
	abort := abortFUSE(m.dir)
	select {
	case <-m.done:
		abort += "; the process then exited"
	case <-time.After(5 * time.Second):
		abort += "; the process is still there"
	}
	t.Fatalf("ovfmount did not exit within %v\n%s%s\nstderr:\n%s", d, report, abort, m.stderr)
	return -1
}

func TestSignalUnmounts(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			m := foreground(t, smallOVA(t, 1000))
			m.cmd.Process.Signal(sig)
			if code := m.exit(t, 10*time.Second); code != 0 {
				t.Errorf("exit %d after %v; stderr:\n%s", code, sig, m.stderr)
			}
			if mounted(t, m.dir) {
				t.Error("still mounted after the daemon exited")
			}
		})
	}
}

// TestSIGTERMWhileReading sends SIGTERM while a reader has a file open and
// keeps reading: the daemon must say the mount is busy and keep serving,
// then unmount and exit 0 once the reader is done. A second signal detaches
// lazily.
func TestSIGTERMWhileReading(t *testing.T) {
	for _, twice := range []bool{false, true} {
		name := "retry until free"
		if twice {
			name = "second signal detaches lazily"
		}
		t.Run(name, func(t *testing.T) {
			archive := smallOVA(t, 8<<20)
			m := foreground(t, archive)
			want := tarExtract(t, archive, "disk1.vmdk")
			f, err := os.Open(filepath.Join(m.dir, "disk1.vmdk"))
			if err != nil {
				t.Fatal(err)
			}
			var stop atomic.Bool
			var reads, failures atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 64<<10)
				for off := int64(0); !stop.Load(); off = (off + 777_777) % int64(len(want)-len(buf)) {
					n, err := f.ReadAt(buf, off)
					if err != nil || !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
						failures.Add(1)
					}
					reads.Add(1)
				}
			}()
			time.Sleep(200 * time.Millisecond)
			m.cmd.Process.Signal(syscall.SIGTERM)
			if !waitFor(5*time.Second, func() bool { return strings.Contains(m.stderr.String(), "mountpoint busy") }) {
				t.Fatalf("no busy message; stderr:\n%s", m.stderr)
			}
			if twice {
				m.cmd.Process.Signal(syscall.SIGTERM)
				if !waitFor(5*time.Second, func() bool { return !mounted(t, m.dir) }) {
					t.Error("the second signal did not detach the mount")
				}
			} else if !mounted(t, m.dir) {
				t.Error("the busy mount went away")
			}
			time.Sleep(300 * time.Millisecond) // the open file keeps working meanwhile
			stop.Store(true)
			wg.Wait()
			f.Close()
			if code := m.exit(t, 10*time.Second); code != 0 {
				t.Errorf("exit %d; stderr:\n%s", code, m.stderr)
			}
			if failures.Load() > 0 || reads.Load() == 0 {
				t.Errorf("%d of %d reads failed or returned wrong bytes", failures.Load(), reads.Load())
			}
			if mounted(t, m.dir) {
				t.Error("still mounted")
			}
		})
	}
}

// TestStaleMountpoint kills the daemon with SIGKILL; the next ovfmount on
// that mountpoint must explain how to clean up.
func TestStaleMountpoint(t *testing.T) {
	archive := smallOVA(t, 1000)
	m := foreground(t, archive)
	m.cmd.Process.Kill()
	m.exit(t, 5*time.Second)
	code, out := runOvfmount(t, archive, m.dir)
	if code != 10 || !strings.Contains(out, "stale FUSE mount") || !strings.Contains(out, "fusermount3 -u "+m.dir) {
		t.Errorf("exit %d, %q; want exit 10 and the clean-up command", code, out)
	}
	if err := exec.Command("fusermount3", "-u", m.dir).Run(); err != nil {
		t.Errorf("the suggested clean-up failed: %v", err)
	}
}

// TestMountHelper mounts through mount(8), as `mount -t fuse...` and an
// fstab line do: mount.fuse3 calls ovfmount with -o after the arguments.
func TestMountHelper(t *testing.T) {
	testutil.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("mount(8) with a type and source needs root")
	}
	testutil.RequireTool(t, "mount.fuse3")
	archive := smallOVA(t, 5000)
	check := func(t *testing.T, mnt string) {
		if b, err := os.ReadFile(filepath.Join(mnt, "appliance.ovf")); err != nil || string(b) != "<Envelope/>" {
			t.Errorf("reading through the helper mount: %q, %v", b, err)
		}
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	}
	t.Run("mount -t", func(t *testing.T) {
		mnt := t.TempDir()
		out, err := exec.Command("mount", "-t", "fuse", daemon(t)+"#"+archive, mnt, "-o", "allow_other,uid=1234,nofail").CombinedOutput()
		if err != nil {
			t.Fatalf("mount: %v %s", err, out)
		}
		st, _ := os.Stat(filepath.Join(mnt, "disk1.vmdk"))
		if st == nil || st.Sys().(*syscall.Stat_t).Uid != 1234 {
			t.Errorf("uid=1234 not applied: %+v", st)
		}
		check(t, mnt)
	})
	t.Run("fstab", func(t *testing.T) {
		mnt := t.TempDir()
		logFile := filepath.Join(t.TempDir(), "log")
		fstab := filepath.Join(t.TempDir(), "fstab")
		line := daemon(t) + "#" + archive + " " + mnt + " fuse defaults,ro,allow_other,noauto,nofail,_netdev,x-systemd.automount,log_file=" + logFile + " 0 0\n"
		os.WriteFile(fstab, []byte(line), 0o644)
		if out, err := exec.Command("mount", "-T", fstab, mnt).CombinedOutput(); err != nil {
			t.Fatalf("mount -T: %v %s", err, out)
		}
		check(t, mnt)
		if !waitFor(5*time.Second, func() bool { return strings.Contains(readFile(logFile), `"unmounted"`) }) {
			t.Errorf("log_file=: log is %q", readFile(logFile))
		}
	})
}

func TestUnpackedPackage(t *testing.T) {
	dir := t.TempDir()
	desc := `<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
<References><File ovf:id="f1" ovf:href="disk1.vmdk"/><File ovf:id="f2" ovf:href="../outside"/></References></Envelope>`
	os.WriteFile(filepath.Join(dir, "app.ovf"), []byte(desc), 0o644)
	os.WriteFile(filepath.Join(dir, "app.mf"), []byte("SHA256(disk1.vmdk)= 00\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "disk1.vmdk"), bytes.Repeat([]byte("d"), 100000), 0o644)
	os.WriteFile(filepath.Join(dir, "unrelated.txt"), []byte("x"), 0o644)
	for _, arg := range []string{filepath.Join(dir, "app.ovf"), dir} {
		m := mountArchive(t, arg)
		entries, _ := os.ReadDir(m.dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if strings.Join(names, " ") != "app.mf app.ovf disk1.vmdk" {
			t.Errorf("%s: mount holds %v", arg, names)
		}
		if b, _ := os.ReadFile(m.path("disk1.vmdk")); len(b) != 100000 {
			t.Errorf("disk1.vmdk: %d bytes", len(b))
		}
		if !strings.Contains(readFile(m.logFile), `\"../outside\" is refused`) {
			t.Errorf("no warning about the escaping href; log:\n%s", readFile(m.logFile))
		}
	}
}

// TestHugeMember mounts an archive whose disk member is over 8 GiB, held in
// a sparse host file, and reads both ends of it and the member after it.
func TestHugeMember(t *testing.T) {
	const big = 9<<30 + 123
	for _, format := range []tar.Format{tar.FormatGNU, tar.FormatPAX} {
		t.Run(format.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "huge.ova")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var hdrs bytes.Buffer
			tw := tar.NewWriter(&hdrs)
			tw.WriteHeader(&tar.Header{Name: "appliance.ovf", Mode: 0o644, Size: 11, Format: format})
			tw.Write([]byte("<Envelope/>"))
			tw.Flush()
			// Only the header of the big member: its data stays a hole.
			tw.WriteHeader(&tar.Header{Name: "disk1.vmdk", Mode: 0o644, Size: big, Format: format})
			f.Write(hdrs.Bytes())
			dataOff := int64(hdrs.Len())
			f.WriteAt([]byte("FIRST"), dataOff)
			f.WriteAt([]byte("LAST!"), dataOff+big-5)
			var tail bytes.Buffer
			tw = tar.NewWriter(&tail)
			tw.WriteHeader(&tar.Header{Name: "appliance.mf", Mode: 0o644, Size: 23, Format: format})
			tw.Write([]byte("SHA256(disk1.vmdk)= 00\n"))
			tw.Close()
			f.WriteAt(tail.Bytes(), dataOff+(big+511)/512*512)
			f.Close()

			start := time.Now()
			m := mountArchive(t, path)
			t.Logf("a %.1f GiB archive mounted in %v (the command, including its background start)", float64(big)/(1<<30), time.Since(start))
			st, err := os.Stat(m.path("disk1.vmdk"))
			if err != nil || st.Size() != big {
				t.Fatalf("disk1.vmdk: %v, %v", st, err)
			}
			g, _ := os.Open(m.path("disk1.vmdk"))
			defer g.Close()
			if b := pread(t, g, 5, 0); string(b) != "FIRST" {
				t.Errorf("first bytes %q", b)
			}
			if b := pread(t, g, 100, big-5); string(b) != "LAST!" {
				t.Errorf("last bytes %q", b)
			}
			if b := pread(t, g, 4096, 5<<30); !bytes.Equal(b, make([]byte, 4096)) {
				t.Error("the middle of the member is not the zeros the archive holds")
			}
			if b, err := os.ReadFile(m.path("appliance.mf")); err != nil || string(b) != "SHA256(disk1.vmdk)= 00\n" {
				t.Errorf("the member after the big one: %q, %v", b, err)
			}
		})
	}
}

// TestUserMountRefused mounts as an unprivileged user on a folder root
// owns, which fusermount3 refuses. The error must give fusermount3's own
// reason, the one it prints when run by hand as that user, and not go-fuse's
// "fusermount exited with code 256". The test runs as root, so that it can
// drop to another user for the child.
func TestUserMountRefused(t *testing.T) {
	testutil.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run ovfmount as another user")
	}
	fusermount := testutil.RequireTool(t, "fusermount3")
	// Every folder on the way must be open to the user, or the archive
	// could not be read and the mount never tried; t.TempDir's are not.
	dir, err := os.MkdirTemp("", "ovfmount-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	archive := filepath.Join(dir, "app.ova")
	data, _ := os.ReadFile(smallOVA(t, 1000))
	os.WriteFile(archive, data, 0o644)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}

	// The oracle: fusermount3 itself, run as go-fuse runs it (with a socket
	// on _FUSE_COMMFD for the descriptor it would pass back).
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	local, remote := os.NewFile(uintptr(fds[0]), "local"), os.NewFile(uintptr(fds[1]), "remote")
	defer local.Close()
	defer remote.Close()
	oracle := exec.Command(fusermount, "-o", "ro", mnt)
	oracle.Args[0] = "fusermount3" // the name its messages start with
	oracle.Env = []string{"_FUSE_COMMFD=3"}
	oracle.ExtraFiles = []*os.File{remote}
	oracle.SysProcAttr = nobody
	said, err := oracle.CombinedOutput()
	if err == nil {
		exec.Command("fusermount3", "-u", "-z", mnt).Run()
		t.Fatalf("fusermount3 run as uid 65534 mounted on %s, a folder root owns", mnt)
	}
	reason := strings.TrimSpace(string(said))
	if !strings.HasPrefix(reason, "fusermount3: ") {
		t.Fatalf("fusermount3 as uid 65534 said %q, %v: not a message of its own", said, err)
	}

	cmd := exec.Command(daemon(t), "--cache-dir=", "--log-level=error", archive, mnt)
	cmd.SysProcAttr = nobody
	out, err := cmd.CombinedOutput()
	want := "ovfmount: mounting " + archive + " on " + mnt + ": " + reason + "\n"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 11 || string(out) != want {
		t.Errorf("exit %v, output %q; want exit 11 and %q", err, out, want)
	}
	if mounted(t, mnt) {
		t.Error("a refused mount left a mount behind")
	}
}

// TestBackgroundMountIsQuiet runs background mounts as a user would, at
// the default log level. A clean appliance prints nothing on the terminal
// (its info lines, "raw view" and "mounted", go only to the log file); an
// archive with problems prints its warnings, and only those.
func TestBackgroundMountIsQuiet(t *testing.T) {
	testutil.RequireFUSE(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk1.img")
	os.WriteFile(raw, bytes.Repeat([]byte("ovfmount disk "), 1<<20/14+1)[:1<<20], 0o644)
	vmdk := filepath.Join(dir, "disk1.vmdk")
	in, _ := os.Open(raw)
	out, _ := os.Create(vmdk)
	if err := vmdkwriter.Write(out, in, 1<<20); err != nil {
		t.Fatal(err)
	}
	in.Close()
	out.Close()
	clean := filepath.Join(dir, "clean.ova")
	if err := sample.WriteOVA(clean, sample.Appliance{Name: "clean", Disks: []sample.Disk{{File: "disk1.vmdk", Path: vmdk,
		Capacity: 1 << 20, Format: sample.StreamOptimized}}}); err != nil {
		t.Fatal(err)
	}

	mount := func(t *testing.T, archive string) (string, string) {
		m := &mountResult{dir: t.TempDir(), logFile: filepath.Join(t.TempDir(), "ovfmount.log")}
		cmd := exec.Command(daemon(t), "--cache-dir", t.TempDir(), "--log-file", m.logFile, archive, m.dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ovfmount %s: %v\n%s", archive, err, out)
		}
		t.Cleanup(func() { m.unmount(t) })
		return string(out), readFile(m.logFile)
	}

	t.Run("clean", func(t *testing.T) {
		out, log := mount(t, clean)
		if out != "" {
			t.Errorf("a clean background mount printed %q", out)
		}
		for _, want := range []string{`"message":"raw view`, `"message":"mounted"`, `"took_ms":`} {
			if !strings.Contains(log, want) {
				t.Errorf("the log file lacks %s:\n%s", want, log)
			}
		}
	})
	t.Run("warnings", func(t *testing.T) {
		out, log := mount(t, smallOVA(t, 1000)) // no manifest, a descriptor in no namespace
		if !strings.Contains(out, "the package has no manifest") || !strings.Contains(out, "Envelope is in no namespace") {
			t.Errorf("the warnings were not printed; output %q", out)
		}
		if strings.Contains(out, "mounted") || strings.Contains(out, "INF") || strings.Contains(out, `"level":"info"`) {
			t.Errorf("info lines were printed: %q", out)
		}
		if !strings.Contains(log, "the package has no manifest") || !strings.Contains(log, `"message":"mounted"`) {
			t.Errorf("the log file lacks the warning or the mounted line:\n%s", log)
		}
	})
}
