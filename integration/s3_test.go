package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/internal/versitygw"
)

// s3Env is the environment ovfmount runs in to reach srv: the host's,
// less any AWS setup, plus the server's credentials, region and endpoint.
func s3Env(srv *versitygw.Server, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(append(env, srv.Env()...), extra...)
}

// runWithEnv runs ovfmount with env and returns its exit code and output.
func runWithEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(daemon(t), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// mountS3 mounts the s3:// sources at a fresh folder, unmounted at the
// end of the test.
func mountS3(t *testing.T, env []string, args ...string) *mountResult {
	t.Helper()
	m := &mountResult{dir: t.TempDir(), logFile: filepath.Join(t.TempDir(), "ovfmount.log")}
	full := append(append([]string{"--log-file", m.logFile, "--log-level", "debug", "--cache-dir", t.TempDir()}, args...), m.dir)
	if code, out := runWithEnv(t, env, full...); code != 0 {
		t.Fatalf("ovfmount %s: exit %d\n%s", strings.Join(full, " "), code, out)
	}
	t.Cleanup(func() { m.unmount(t) })
	return m
}

// TestS3 mounts archives from a real S3 server (Versity Gateway): one
// object, compared member by member with tar and raw view with qemu-img;
// a prefix as a library; a wrong secret; and an object replaced under
// the mount.
func TestS3(t *testing.T) {
	testutil.RequireFUSE(t)
	srv := versitygw.Start(t)
	ctx := context.Background()
	if err := srv.CreateBucket(ctx, "golden"); err != nil {
		t.Fatal(err)
	}
	ova := smallSampleOVA(t)
	gz := compressWith(t, ova, filepath.Join(t.TempDir(), "b.ova.gz"), "gzip", "-c")
	for key, path := range map[string]string{"appliance-2.4.ova": ova, "lib/a.ova": ova, "lib/b.ova.gz": gz} {
		if _, err := srv.PutFile(ctx, "golden", key, path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.PutObject(ctx, "golden", "lib/notes.txt", []byte("release notes\n")); err != nil {
		t.Fatal(err)
	}
	env := s3Env(srv)

	m := mountS3(t, env, "s3://golden/appliance-2.4.ova")
	for name := range tarMembers(t, ova) {
		got, err := os.ReadFile(m.path(name))
		if err != nil || !bytes.Equal(got, tarExtract(t, ova, name)) {
			t.Errorf("%s: differs from tar's (%v)", name, err)
		}
	}
	vmdk := filepath.Join(t.TempDir(), "disk1.vmdk")
	os.WriteFile(vmdk, tarExtract(t, ova, "disk1.vmdk"), 0o644)
	want := filepath.Join(t.TempDir(), "want.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", vmdk, want).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	wantRaw, _ := os.ReadFile(want)
	if got, err := os.ReadFile(m.path("disks/disk1.vmdk.raw")); err != nil || !bytes.Equal(got, wantRaw) {
		t.Errorf("raw view from S3 differs from qemu-img's (%v)", err)
	}
	if log := readFile(m.logFile); strings.Contains(log, srv.Secret) {
		t.Errorf("the log holds the secret")
	}
	m.unmount(t)

	if code, out := runWithEnv(t, env, "info", "s3://golden/appliance-2.4.ova"); code != 0 || !strings.Contains(out, "Archive     s3://golden/appliance-2.4.ova") {
		t.Errorf("info: exit %d\n%s", code, out)
	}

	// A prefix is a library; what is no archive fails its folder only.
	lib := mountS3(t, env, "s3://golden/lib/")
	des, _ := os.ReadDir(lib.dir)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if strings.Join(names, " ") != "a b notes.txt" {
		t.Errorf("library of the prefix: %v", names)
	}
	if got, err := os.ReadFile(lib.path("b/disks/disk1.vmdk.raw")); err != nil || !bytes.Equal(got, wantRaw) {
		t.Errorf("the raw view of b, an .ova.gz in S3, differs (%v)", err)
	}
	if got, err := os.ReadFile(lib.path("a/disk1.vmdk")); err != nil || !bytes.Equal(got, tarExtract(t, ova, "disk1.vmdk")) {
		t.Errorf("a/disk1.vmdk differs from tar's (%v)", err)
	}
	if _, err := os.ReadDir(lib.path("notes.txt")); err == nil || xattr(t, lib.path("notes.txt"), "user.ovfmount.state") != "failed" {
		t.Errorf("notes.txt: listing gave %v, state %q", err, xattr(t, lib.path("notes.txt"), "user.ovfmount.state"))
	}
	lib.unmount(t)

	// A wrong secret: exit 2, with what S3 said, and no secret shown.
	bad := s3Env(srv, "AWS_SECRET_ACCESS_KEY=not-the-secret")
	code, out := runWithEnv(t, bad, "info", "s3://golden/appliance-2.4.ova")
	if code != 2 || !strings.Contains(out, "SignatureDoesNotMatch") || strings.Contains(out, "not-the-secret") {
		t.Errorf("wrong secret: exit %d\n%s", code, out)
	}
	// A missing key: exit 2, named.
	if code, out := runWithEnv(t, env, "info", "s3://golden/missing.ova"); code != 2 || !strings.Contains(out, "NoSuchKey") {
		t.Errorf("missing key: exit %d\n%s", code, out)
	}

	// An object replaced under the mount: reads of bytes not fetched yet
	// fail with EIO, never mixing versions. The archive is larger than
	// what the mount fetches (its first block and the blocks of the tar
	// headers and the disk's footer), and nothing verifies in the
	// background, so the disk's middle is fetched after the change.
	big := sampleOVA(t)
	if _, err := srv.PutFile(ctx, "golden", "big.ova", big); err != nil {
		t.Fatal(err)
	}
	m = mountS3(t, env, "--remote-cache", "0", "--verify", "off", "s3://golden/big.ova")
	if _, err := srv.PutFile(ctx, "golden", "big.ova", ova); err != nil {
		t.Fatal(err)
	}
	_, err := os.ReadFile(m.path("disk1.vmdk"))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("reading after the object was replaced: %v, want EIO", err)
	}
	if !strings.Contains(readFile(m.logFile), "changed") {
		t.Errorf("the log does not say the object changed:\n%s", readFile(m.logFile))
	}
}
