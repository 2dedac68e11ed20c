package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// signedPkg writes an appliance whose disk is a streamOptimized VMDK, with
// a SHA256 manifest signed by an ECDSA key, and returns the OVA, the CA's
// PEM file (for --ca) and the disk image bytes.
type signedPkg struct {
	ova, caPEM, pubPEM, mf, sig string
	disk                        []byte
	diskOff                     int64 // archive offset of the disk member's data
}

func makeSignedPkg(t *testing.T, tamperDisk bool) *signedPkg {
	t.Helper()
	dir := t.TempDir()
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	img := filepath.Join(dir, "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, img)
	disk, _ := os.ReadFile(img)
	desc := testpkg.F("app.ovf", `<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:id="f1" ovf:href="disk1.vmdk"/></References><DiskSection><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="67108864"/></DiskSection></Envelope>`)
	mf := testpkg.Manifest("SHA256", desc, testpkg.File{Name: "disk1.vmdk", Data: disk}).Named("app.mf")
	s := testpkg.NewSigner(t, nil)
	cert := s.Sign(t, "SHA256", "app.mf", mf.Data, nil)
	sig, _ := hex.DecodeString(strings.TrimSpace(strings.SplitN(strings.SplitN(string(cert), "\n", 2)[0], "= ", 2)[1]))

	p := &signedPkg{ova: filepath.Join(dir, "app.ova"), caPEM: s.WriteCA(t, dir), pubPEM: filepath.Join(dir, "pub.pem"),
		mf: filepath.Join(dir, "app.mf"), sig: filepath.Join(dir, "app.sig"), disk: disk}
	pubDER, _ := x509.MarshalPKIXPublicKey(s.Key.Public())
	os.WriteFile(p.pubPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	os.WriteFile(p.mf, mf.Data, 0o644)
	os.WriteFile(p.sig, sig, 0o644)

	if tamperDisk {
		disk = bytes.Clone(disk)
		disk[len(disk)/2] ^= 0x01
	}
	testpkg.WriteOVA(t, p.ova, desc, mf, testpkg.File{Name: "app.cert", Data: cert}, testpkg.File{Name: "disk1.vmdk", Data: disk})
	off, err := memberOffset(p.ova, "disk1.vmdk")
	if err != nil {
		t.Fatal(err)
	}
	p.diskOff = off
	return p
}

// memberOffset is where a member's data starts in a tar archive.
func memberOffset(archive, name string) (int64, error) {
	f, err := os.Open(archive)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return 0, fmt.Errorf("%s: no member %s: %v", archive, name, err)
		}
		if h.Name == name {
			return f.Seek(0, io.SeekCurrent)
		}
	}
}

func xattr(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := syscall.Getxattr(path, name, buf)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(buf[:n])
}

func TestLazyVerifyXattrs(t *testing.T) {
	p := makeSignedPkg(t, false)
	m := mountArchive(t, p.ova, "--cache-dir", t.TempDir())
	if got := xattr(t, m.dir, "user.ovfmount.signature"); got != "ok-untrusted CN=Appliance Vendor" {
		t.Errorf("signature without the CA: %q", got)
	}
	disk, view := m.path("disk1.vmdk"), m.path("disks/disk1.vmdk.raw")
	if got := xattr(t, disk, "user.ovfmount.verify"); got != "pending" {
		t.Errorf("before any open: %q", got)
	}
	sum := sha256.Sum256(p.disk)
	if got := xattr(t, disk, "user.ovfmount.digest"); got != "SHA256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("digest attribute %q", got)
	}
	f, err := os.Open(view) // opening the raw view verifies the file it reads
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !waitFor(10*time.Second, func() bool { return xattr(t, disk, "user.ovfmount.verify") == "verified" }) {
		t.Fatalf("never verified: %q", xattr(t, disk, "user.ovfmount.verify"))
	}
	if got := xattr(t, view, "user.ovfmount.verify"); got != "verified" {
		t.Errorf("the raw view carries its file's state: %q", got)
	}
	if got := xattr(t, m.path("app.mf"), "user.ovfmount.verify"); got != "verified" {
		t.Errorf("the signed manifest: %q", got)
	}
	if !strings.Contains(readFile(m.logFile), `"verified"`) {
		t.Error("the log does not report the verification")
	}

	// With the CA, the signer is trusted.
	m2 := mountArchive(t, p.ova, "--ca", p.caPEM)
	if got := xattr(t, m2.dir, "user.ovfmount.signature"); got != "ok" {
		t.Errorf("signature with --ca: %q", got)
	}
	// Without it, and a trusted signer required, it is bad.
	m3 := mountArchive(t, p.ova, "--require-trusted-signer")
	if got := xattr(t, m3.dir, "user.ovfmount.signature"); got != "bad" {
		t.Errorf("signature with --require-trusted-signer: %q", got)
	}
}

func TestStrictTamperedDisk(t *testing.T) {
	p := makeSignedPkg(t, true)
	m := mountArchive(t, p.ova, "--verify=strict", "--ca", p.caPEM, "--cache-dir", "")
	for _, name := range []string{"disk1.vmdk", "disks/disk1.vmdk.raw"} {
		_, err := os.ReadFile(m.path(name))
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: %v, want EIO", name, err)
		}
	}
	if b, err := os.ReadFile(m.path("app.ovf")); err != nil || len(b) == 0 {
		t.Errorf("the intact descriptor: %v", err)
	}
	if got := xattr(t, m.path("disk1.vmdk"), "user.ovfmount.verify"); got != "mismatch" {
		t.Errorf("state %q", got)
	}
	log := readFile(m.logFile)
	for _, want := range []string{"verification failed", `"file":"disk1.vmdk"`, `"expected"`, `"actual"`, `"algorithm":"SHA256"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

// TestTamperAfterVerify damages one byte of the archive on disk after the
// disk was verified, as media damage would: same size, same mtime (a write
// that moves the mtime is caught as a changed archive, see
// TestArchiveChangesUnderneath). It drops the page cache and reads again:
// the damaged piece fails, and reads elsewhere still work.
func TestTamperAfterVerify(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dropping the page cache needs root")
	}
	p := makeSignedPkg(t, false)
	m := mountArchive(t, p.ova, "--cache-dir", "")
	disk := m.path("disk1.vmdk")
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !waitFor(10*time.Second, func() bool { return xattr(t, disk, "user.ovfmount.verify") == "verified" }) {
		t.Fatal("never verified")
	}
	damaged := int64(len(p.disk)) / 2 // in chunk 3 or 4 of an 8 MB disk
	st, _ := os.Stat(p.ova)
	w, _ := os.OpenFile(p.ova, os.O_WRONLY, 0)
	w.WriteAt([]byte{^p.disk[damaged]}, p.diskOff+damaged)
	w.Close()
	if err := os.Chtimes(p.ova, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
	time.Sleep(1100 * time.Millisecond) // past the one-second life of recently checked chunks

	if b := pread(t, f, 4096, 0); !bytes.Equal(b, p.disk[:4096]) {
		t.Error("an intact piece no longer reads")
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, damaged&^4095); !errors.Is(err, syscall.EIO) {
		t.Fatalf("the damaged piece: %v, want EIO", err)
	}
	if got := xattr(t, disk, "user.ovfmount.verify"); got != "mismatch" {
		t.Errorf("state after the damage: %q", got)
	}
	if !strings.Contains(readFile(m.logFile), `"piece":`) {
		t.Error("the log does not name the piece")
	}
}

func runVerifyJSON(t *testing.T, args ...string) (int, map[string]any) {
	t.Helper()
	code, out := runOvfmount(t, append([]string{"verify", "--json"}, args...)...)
	var r map[string]any
	start := strings.Index(out, "{")
	if start < 0 {
		t.Fatalf("verify --json %v: exit %d, no JSON:\n%s", args, code, out)
	}
	if err := json.Unmarshal([]byte(out[start:]), &r); err != nil {
		t.Fatalf("verify --json printed %q: %v", out, err)
	}
	return code, r
}

func TestVerifyCommand(t *testing.T) {
	good := makeSignedPkg(t, false)
	code, r := runVerifyJSON(t, "--ca", good.caPEM, "--cache-dir", t.TempDir(), good.ova)
	if code != 0 || r["ok"] != true {
		t.Fatalf("a good package: exit %d, %v", code, r)
	}
	sig := r["signature"].(map[string]any)
	if sig["status"] != "ok" || sig["chain"] != "trusted" || !strings.Contains(fmt.Sprint(sig["signer"]), "Appliance Vendor") {
		t.Errorf("signature %v", sig)
	}
	// The digests agree with sha256sum of the extracted files.
	testutil.RequireTool(t, "sha256sum")
	for _, f := range r["files"].([]any) {
		file := f.(map[string]any)
		if file["status"] == "manifest" || file["status"] == "certificate" {
			continue // the signature covers them, not a digest
		}
		out, err := exec.Command("sh", "-c", fmt.Sprintf("tar -xOf %s %s | sha256sum", good.ova, file["name"])).Output()
		if err != nil || strings.Fields(string(out))[0] != file["actual"] || file["status"] != "ok" {
			t.Errorf("%v: sha256sum says %s", file, out)
		}
	}
	// The signature agrees with openssl.
	testutil.RequireTool(t, "openssl")
	if out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", good.pubPEM, "-signature", good.sig, good.mf).CombinedOutput(); err != nil {
		t.Errorf("openssl does not verify the test's signature: %v %s", err, out)
	}

	bad := makeSignedPkg(t, true)
	code, r = runVerifyJSON(t, bad.ova)
	if code != 1 || r["ok"] != false {
		t.Errorf("a tampered package: exit %d, ok %v", code, r["ok"])
	}
	var mismatch bool
	for _, f := range r["files"].([]any) {
		file := f.(map[string]any)
		if file["name"] == "disk1.vmdk" && file["status"] == "mismatch" && file["expected"] != file["actual"] {
			mismatch = true
		}
	}
	if !mismatch {
		t.Errorf("no mismatch reported: %v", r["files"])
	}
	code, out := runOvfmount(t, "verify", bad.ova)
	if code != 1 || !strings.Contains(out, "verdict: FAILED") || !strings.Contains(out, "mismatch") {
		t.Errorf("human output: exit %d\n%s", code, out)
	}

	if code, out := runOvfmount(t, "verify", "/nonexistent.ova"); code != 2 || !strings.Contains(out, "no such file") {
		t.Errorf("a missing archive: exit %d, %q", code, out)
	}
	if code, _ := runOvfmount(t, "verify"); code != 2 {
		t.Errorf("no argument: exit %d", code)
	}
}

// TestVerifyThenStrictMount: a successful verify leaves trusted chunk
// tables, so a strict mount afterwards is verified from the start.
func TestVerifyThenStrictMount(t *testing.T) {
	p := makeSignedPkg(t, false)
	cache := t.TempDir()
	if code, out := runOvfmount(t, "verify", "--cache-dir", cache, p.ova); code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	m := mountArchive(t, p.ova, "--verify=strict", "--cache-dir", cache)
	if got := xattr(t, m.path("disk1.vmdk"), "user.ovfmount.verify"); got != "verified" {
		t.Errorf("a strict mount after verify: %q, want verified at once", got)
	}
	if !strings.Contains(readFile(m.logFile), `"fromCache":true`) {
		t.Error("the log does not say the tables came from the cache")
	}
	if b, err := os.ReadFile(m.path("disk1.vmdk")); err != nil || !bytes.Equal(b, p.disk) {
		t.Errorf("reading the verified disk: %v", err)
	}
}
