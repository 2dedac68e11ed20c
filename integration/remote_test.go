package integration

import (
	"bufio"
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/nginx"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// servePkg serves a signed package and its tampered twin from a real
// nginx on loopback, as app.ova and tampered.ova.
func servePkg(t *testing.T) (*nginx.Server, *signedPkg, string) {
	t.Helper()
	testutil.RequireFUSE(t)
	if _, err := nginx.Binary(); err != nil {
		if os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	p := makeSignedPkg(t, false)
	bad := makeSignedPkg(t, true)
	root := t.TempDir()
	for name, src := range map[string]string{"app.ova": p.ova, "tampered.ova": bad.ova} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, name), b, 0o644)
	}
	srv, err := nginx.Start(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv, p, root
}

// TestRemote mounts packages served by nginx. The subtests share one
// server and one pair of packages, which take longer to make than to test.
func TestRemote(t *testing.T) {
	srv, p, root := servePkg(t)
	oracle := rawOracle(t, p)
	t.Run("mount", func(t *testing.T) { remoteMount(t, srv, p, oracle) })
	t.Run("verify", func(t *testing.T) { remoteVerify(t, srv, p, oracle) })
	t.Run("access", func(t *testing.T) { remoteAccess(t, srv, p) })
	t.Run("file changes", func(t *testing.T) { remoteFileChanges(t, srv, root) })
}

// rawOracle is qemu-img's raw conversion of the package's disk.
func rawOracle(t *testing.T, p *signedPkg) string {
	t.Helper()
	dir := t.TempDir()
	img, raw := filepath.Join(dir, "disk1.vmdk"), filepath.Join(dir, "disk1.raw")
	os.WriteFile(img, p.disk, 0o644)
	testutil.QemuImg(t, "convert", "-O", "raw", img, raw)
	return raw
}

// An OVA on nginx mounts in a few requests, and every member and the raw
// view read through it are the local file's bytes. Reading them again
// costs no request, and a later mount with the same cache folder reads
// everything from it.
func remoteMount(t *testing.T, srv *nginx.Server, p *signedPkg, oracle string) {
	url := srv.URL + "/app.ova"
	cache := t.TempDir()
	before := srv.Requests()
	m := mountArchive(t, url, "--verify=off", "--cache-dir", cache)
	mountCost := srv.Requests() - before
	t.Logf("mounting took %d requests", mountCost)
	if mountCost > 10 {
		t.Errorf("mounting took %d requests, over the budget of 10:\n%s", mountCost, strings.Join(srv.Log(before), "\n"))
	}
	compareWithTar(t, p.ova, m)
	sameFile(t, m.path("disks/disk1.vmdk.raw"), oracle)
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); !strings.Contains(string(mi), url) {
		t.Errorf("the mount is not named by its URL in mountinfo")
	}

	if os.Geteuid() == 0 {
		dropCaches(t)
		before = srv.Requests()
		compareWithTar(t, p.ova, m)
		if n := srv.Requests() - before; n != 0 {
			t.Errorf("re-reading every member took %d requests:\n%s", n, strings.Join(srv.Log(before), "\n"))
		}
	}
	m.unmount(t)

	// The blocks kept in the cache folder serve a new mount: only Open's
	// request reaches the server.
	before = srv.Requests()
	m = mountArchive(t, url, "--verify=off", "--cache-dir", cache)
	compareWithTar(t, p.ova, m)
	if n := srv.Requests() - before; n > 1 {
		t.Errorf("a mount and a full read with a warm cache took %d requests:\n%s", n, strings.Join(srv.Log(before), "\n"))
	}
}

// Lazy and strict verification, verify and info work on a URL as on a
// file.
func remoteVerify(t *testing.T, srv *nginx.Server, p *signedPkg, oracle string) {
	url, bad := srv.URL+"/app.ova", srv.URL+"/tampered.ova"

	cache := t.TempDir()
	m := mountArchive(t, url, "--ca", p.caPEM, "--cache-dir", cache)
	if got := xattr(t, m.dir, "user.ovfmount.signature"); got != "ok" {
		t.Errorf("signature: %q", got)
	}
	disk := m.path("disk1.vmdk")
	f, err := os.Open(disk) // opening a file starts its verification
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !waitFor(20*time.Second, func() bool { return xattr(t, disk, "user.ovfmount.verify") == "verified" }) {
		t.Errorf("never verified: %q", xattr(t, disk, "user.ovfmount.verify"))
	}
	sameFile(t, m.path("disks/disk1.vmdk.raw"), oracle)
	m.unmount(t)
	// The chunk tables kept under the remote file's identity let the
	// next mount trust the file without hashing it again.
	m = mountArchive(t, url, "--ca", p.caPEM, "--cache-dir", cache)
	if got := xattr(t, m.path("disk1.vmdk"), "user.ovfmount.verify"); got != "verified" {
		t.Errorf("a remount with the saved chunk tables, before any open: %q", got)
	}

	s := mountArchive(t, bad, "--verify=strict", "--ca", p.caPEM, "--cache-dir", "")
	if _, err := os.ReadFile(s.path("disks/disk1.vmdk.raw")); !errors.Is(err, syscall.EIO) {
		t.Errorf("strict read of the tampered disk: %v, want EIO", err)
	}
	if b, err := os.ReadFile(s.path("app.ovf")); err != nil || len(b) == 0 {
		t.Errorf("strict read of the intact descriptor: %v", err)
	}

	if code, out := runOvfmount(t, "verify", "--ca", p.caPEM, "--cache-dir", "", url); code != 0 || !strings.Contains(out, "disk1.vmdk") {
		t.Errorf("verify: exit %d\n%s", code, out)
	}
	if code, out := runOvfmount(t, "verify", "--cache-dir", "", bad); code != 1 || !strings.Contains(out, "mismatch") {
		t.Errorf("verify of the tampered package: exit %d\n%s", code, out)
	}
	code, out := runOvfmount(t, "info", "--json", url)
	if code != 0 || !strings.Contains(out, `"archive": "`+url+`"`) || !strings.Contains(out, "streamOptimized") {
		t.Errorf("info: exit %d\n%s", code, out)
	}
}

// Credentials reach the server and never the log; a private CA is
// trusted only when given; redirects are followed.
func remoteAccess(t *testing.T, srv *nginx.Server, p *signedPkg) {

	private := srv.URL + "/private/app.ova"
	if code, out := runOvfmount(t, private, t.TempDir()); code != 2 || !strings.Contains(out, "access denied") {
		t.Errorf("without credentials: exit %d\n%s", code, out)
	}
	m := mountArchive(t, private, "--verify=off", "-H", "Authorization: Bearer "+srv.Token)
	if b, err := os.ReadFile(m.path("app.ovf")); err != nil || len(b) == 0 {
		t.Errorf("with credentials: %v", err)
	}

	// A presigned URL's signature is a credential too.
	signed := srv.URL + "/app.ova?X-Amz-Credential=KEY&X-Amz-Signature=SECRETSIG"
	m2 := mountArchive(t, signed, "--verify=off")
	compareWithTar(t, p.ova, m2)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, mm := range []*mountResult{m, m2} {
		mm.unmount(t)
		log := readFile(mm.logFile)
		for _, secret := range []string{srv.Token, "SECRETSIG"} {
			if strings.Contains(log, secret) || strings.Contains(string(mi), secret) {
				t.Errorf("%s leaks into the log or the mount table", secret)
			}
		}
	}

	tls := srv.TLSURL + "/app.ova"
	if code, out := runOvfmount(t, tls, t.TempDir()); code != 2 || !strings.Contains(out, "--ca") {
		t.Errorf("https from a private CA without --ca: exit %d\n%s", code, out)
	}
	// One --ca file serves both the server's CA and the signer's.
	both := filepath.Join(t.TempDir(), "cas.pem")
	a, _ := os.ReadFile(srv.CAFile)
	b, _ := os.ReadFile(p.caPEM)
	os.WriteFile(both, append(a, b...), 0o644)
	m3 := mountArchive(t, tls, "--ca", both, "--cache-dir", "")
	compareWithTar(t, p.ova, m3)
	if got := xattr(t, m3.dir, "user.ovfmount.signature"); got != "ok" {
		t.Errorf("signature with both CAs in --ca: %q", got)
	}

	m4 := mountArchive(t, srv.URL+"/hop1/app.ova", "--verify=off")
	compareWithTar(t, p.ova, m4)
}

// The file on the server is replaced while mounted: reads of bytes not
// yet fetched fail with EIO and the log says why; nothing mixes versions.
func remoteFileChanges(t *testing.T, srv *nginx.Server, root string) {
	// A member larger than the memory cache, so its end is fetched only
	// when read.
	version := func(seed int64) string {
		return tarOf(t, good, member{name: "big.bin", size: 200 << 20, gen: func(w *bufio.Writer) {
			io.CopyN(w, rand.New(rand.NewSource(seed)), 200<<20)
		}})
	}
	v1, v2 := version(1), version(2)
	os.Rename(v1, filepath.Join(root, "changing.ova"))
	m := mountArchive(t, srv.URL+"/changing.ova", "--verify=off", "--cache-dir", "")
	if b, err := os.ReadFile(m.path("good.txt")); err != nil || string(b) != "still served" {
		t.Fatalf("before the change: %q %v", b, err)
	}
	// The same size; a later mtime gives it another ETag, as a re-upload
	// would.
	later := time.Now().Add(time.Hour)
	os.Chtimes(v2, later, later)
	if err := os.Rename(v2, filepath.Join(root, "changing.ova")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(m.path("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(make([]byte, 4096), 150<<20); !errors.Is(err, syscall.EIO) {
		t.Errorf("reading after the change: %v, want EIO", err)
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(readFile(m.logFile), "changed") }) {
		t.Errorf("the log does not say the file changed:\n%s", tail(readFile(m.logFile), 2000))
	}
	// Bytes already read stay readable only if cached; none may come
	// from the new version.
	if b, err := os.ReadFile(m.path("good.txt")); err == nil && string(b) != "still served" {
		t.Errorf("after the change: %q", b)
	}
}

// A server that accepts connections and never answers: SIGTERM ends the
// wait for it at once, and nothing is mounted.
func TestRemoteStalledOpenInterrupted(t *testing.T) {
	testutil.RequireFUSE(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, unanswered, until the test ends
		}
	}()
	dir := t.TempDir()
	var stderr syncBuffer
	cmd := exec.Command(daemon(t), "-f", "http://"+l.Addr().String()+"/app.ova", dir)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("ovfmount kept waiting after SIGTERM; stderr:\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if mounted(t, dir) {
		t.Error("something was mounted")
	}
}
