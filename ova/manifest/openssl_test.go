package manifest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestOpenSSL checks both directions against openssl, the tool VMware
// documents for signing OVF packages: openssl accepts the signatures the
// tests make (so VerifySignature is tested against real PKCS #1 v1.5 and
// ECDSA encodings, not a mirror of itself), and VerifySignature accepts
// what `openssl dgst -sha256 -sign` writes.
func TestOpenSSL(t *testing.T) {
	openssl := testutil.RequireTool(t, "openssl")
	p := getPKI(t)
	for _, tc := range []struct {
		name string
		id   identity
	}{
		{"RSA 2048", p.rsaLeaf},
		{"ECDSA P-256", p.ecLeaf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name string, data []byte) string {
				path := filepath.Join(dir, name)
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			}
			run := func(args ...string) []byte {
				out, err := exec.Command(openssl, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return out
			}
			keyDER, err := x509.MarshalPKCS8PrivateKey(tc.id.key)
			if err != nil {
				t.Fatal(err)
			}
			pubDER, err := x509.MarshalPKIXPublicKey(tc.id.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			key := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
			pub := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
			mf := write("x.mf", pkgManifest)

			// Ours, checked by openssl.
			ours := write("sig.bin", sign(t, tc.id.key, SHA256, pkgManifest))
			if out := run("dgst", "-sha256", "-verify", pub, "-signature", ours, mf); !bytes.Contains(out, []byte("Verified OK")) {
				t.Fatalf("openssl does not verify our signature: %s", out)
			}
			// A tampered .mf fails in openssl too, so the check above means something.
			bad := write("bad.mf", append(bytes.Clone(pkgManifest), ' '))
			if out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", pub, "-signature", ours, bad).CombinedOutput(); err == nil {
				t.Fatalf("openssl verifies a tampered manifest: %s", out)
			}

			// openssl's, checked by VerifySignature through a .cert file.
			theirs := filepath.Join(dir, "openssl.sig")
			run("dgst", "-sha256", "-sign", key, "-out", theirs, mf)
			sig, err := os.ReadFile(theirs)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseCert(bytes.NewReader(certFile(SHA256, "x.mf", sig, tc.id.cert)))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.VerifySignature(pkgManifest); err != nil {
				t.Fatalf("openssl's signature: %v", err)
			}
			if err := c.VerifySignature(append(bytes.Clone(pkgManifest), ' ')); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("openssl's signature over a tampered manifest: %v", err)
			}
			c.Algorithm = SHA512
			if err := c.VerifySignature(pkgManifest); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("openssl's SHA256 signature checked as SHA512: %v", err)
			}
		})
	}
}
