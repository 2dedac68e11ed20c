package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/internal/nginx"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// testCA writes a CA certificate as PEM, as the tests' nginx uses, and
// returns its path and the certificate.
func testCA(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	if err := nginx.WriteCertificates(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.crt")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return path, cert
}

// The --ca file is read once, and its users, the https client and the
// signer's chain check, get the same pool, which trusts the file's CA.
func TestCAParsedOnceForBothUsers(t *testing.T) {
	path, cert := testCA(t)
	v := &verify{caFile: path, net: remoteFlags{timeout: time.Second}}
	opt, err := v.net.options(v.cas(), "", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if opt.RootCAs == nil {
		t.Fatal("no RootCAs for the https client")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: opt.RootCAs}); err != nil {
		t.Errorf("the pool does not trust the --ca certificate: %v", err)
	}
	// Gone now: the signer's check must not need the file again.
	os.Remove(path)
	iopts, err := v.integrityOptions(integrity.Lazy)
	if err != nil {
		t.Fatalf("the second user read the file again: %v", err)
	}
	if iopts.Roots != opt.RootCAs {
		t.Error("the signer's check got a pool of its own")
	}
}

func TestNoCA(t *testing.T) {
	v := &verify{net: remoteFlags{timeout: time.Second}}
	opt, err := v.net.options(v.cas(), "", zerolog.Nop())
	if err != nil || opt.RootCAs != nil {
		t.Errorf("https client: %v, %v; want the system roots (nil)", opt.RootCAs, err)
	}
	iopts, err := v.integrityOptions(integrity.Lazy)
	if err != nil || iopts.Roots != nil {
		t.Errorf("signer: %v, %v; want the system roots (nil)", iopts.Roots, err)
	}
}

// A missing or bad --ca file is reported as it always was: each user in
// its own words, with exit code 2.
func TestBadCAMessages(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate\n"), 0o600)
	missing := "/nonexistent/ca.pem"
	for _, tc := range []struct {
		file, remote, signer string
	}{
		{missing, "CA file: open /nonexistent/ca.pem: no such file or directory", "--ca: no such file"},
		{bad, "CA file " + bad + ": no PEM certificates in it", "--ca: " + bad + " holds no PEM certificate"},
	} {
		v := &verify{caFile: tc.file, net: remoteFlags{timeout: time.Second}}
		if _, err := v.net.options(v.cas(), "", zerolog.Nop()); err == nil || err.Error() != tc.remote || codeOf(err) != exitUsage {
			t.Errorf("https client: %v (exit %d), want %q (exit 2)", err, codeOf(err), tc.remote)
		}
		if _, err := v.integrityOptions(integrity.Lazy); err == nil || err.Error() != tc.signer || codeOf(err) != exitUsage {
			t.Errorf("signer: %v (exit %d), want %q (exit 2)", err, codeOf(err), tc.signer)
		}
	}
}
