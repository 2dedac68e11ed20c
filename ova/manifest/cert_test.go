package manifest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// certCases are the .cert table; the fuzz target starts from their inputs.
func certCases(t testing.TB) []certCase {
	p := getPKI(t)
	sig := sign(t, p.ecLeaf.key, SHA256, pkgManifest)
	sigHex := fmt.Sprintf("%x", sig)
	sig1 := sign(t, p.ecLeaf.key, SHA1, pkgManifest)
	leaf, ca := pemOf("CERTIFICATE", p.ecLeaf.cert.Raw), pemOf("CERTIFICATE", p.ecCA.cert.Raw)
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	return []certCase{
		{name: "ovftool layout", in: "SHA256(pkg.mf)= " + sigHex + "\n" + leaf + ca,
			alg: SHA256, mf: "pkg.mf", certs: 2, verifies: true},
		{name: "CRLF, blank lines, BOM, IPRT blanks", in: "\xef\xbb\xbf\r\n\r\nSHA-256 (pkg.mf) = " + strings.ToUpper(sigHex) + "\r\n\r\n" + crlf(leaf) + "\r\n" + crlf(ca),
			alg: SHA256, mf: "pkg.mf", certs: 2, verifies: true},
		{name: "other PEM blocks skipped", in: "SHA256(pkg.mf)= " + sigHex + "\n" + pemOf("PUBLIC KEY", []byte{1, 2}) + leaf + pemOf("X509 CRL", []byte{3}),
			alg: SHA256, mf: "pkg.mf", certs: 1, verifies: true,
			warns: []string{`PEM block 1 skipped: "PUBLIC KEY", not CERTIFICATE`, `PEM block 3 skipped: "X509 CRL", not CERTIFICATE`}},
		{name: "private key published", in: "SHA256(pkg.mf)= " + sigHex + "\n" + leaf + pemOf("EC PRIVATE KEY", []byte{1}),
			alg: SHA256, mf: "pkg.mf", certs: 1, verifies: true,
			warns: []string{`PEM block 2 is a "EC PRIVATE KEY": the signer's secret key was published`}},
		{name: "undecodable certificate skipped", in: "SHA256(pkg.mf)= " + sigHex + "\n" + pemOf("CERTIFICATE", []byte("junk")) + leaf,
			alg: SHA256, mf: "pkg.mf", certs: 1, verifies: true, warns: []string{"PEM block 1 skipped: x509: malformed certificate"}},
		{name: "truncated last block", in: "SHA256(pkg.mf)= " + sigHex + "\n" + leaf + ca[:len(ca)/2],
			alg: SHA256, mf: "pkg.mf", certs: 1, verifies: true, warns: []string{"1 PEM blocks truncated or malformed, skipped"}},
		{name: "garbage before the signature line", in: "hello\nSHA256(pkg.mf)= " + sigHex + "\n" + leaf,
			alg: SHA256, mf: "pkg.mf", certs: 1, verifies: true, warns: []string{`line 1: not a signature line (no "("): "hello"`}},
		{name: "strongest signature line used", in: "SHA1(pkg.mf)= " + fmt.Sprintf("%x", sig1) + "\nSHA256(pkg.mf)= " + sigHex + "\nMD5(pkg.mf)= 00\n" + leaf,
			alg: SHA256, mf: "pkg.mf", certs: 1, verifies: true,
			warns: []string{"line 1: SHA1 signature ignored for line 2's stronger SHA256 one", "line 3: second signature line ignored; line 2's SHA256 signature is used"}},
		{name: "signature names no manifest", in: "SHA256(pkg.ovf)= " + sigHex + "\n" + leaf,
			alg: SHA256, mf: "pkg.ovf", certs: 1, verifies: true, warns: []string{`line 1: the signature names "pkg.ovf", not a .mf manifest`}},
		{name: "MD5 signature", in: "MD5(pkg.mf)= 0011\n" + leaf,
			alg: MD5, mf: "pkg.mf", certs: 1, warns: []string{"line 1: the signature uses MD5"}},
		{name: "no signature line", in: leaf, err: ErrNoSignature, errHas: "no signature line before the first PEM block"},
		{name: "signature after the certificate", in: leaf + "SHA256(pkg.mf)= " + sigHex + "\n", err: ErrNoSignature},
		{name: "unknown algorithm only", in: "SHA384(pkg.mf)= " + sigHex + "\n" + leaf, err: ErrNoSignature,
			errHas: `line 1: unknown digest algorithm "SHA384"`},
		{name: "odd-length signature", in: "SHA256(pkg.mf)= abc\n" + leaf, err: ErrNoSignature, errHas: "signature is not hexadecimal"},
		{name: "huge hex signature", in: "SHA256(pkg.mf)= " + strings.Repeat("ab", 1<<20) + "\n" + leaf, err: ErrNoSignature,
			errHas: "signature of 2097152 hex digits is longer than any supported key makes"},
		{name: "no certificate", in: "SHA256(pkg.mf)= " + sigHex + "\n", err: ErrNoCertificate},
		{name: "truncated only certificate", in: "SHA256(pkg.mf)= " + sigHex + "\n" + leaf[:len(leaf)-30], err: ErrNoCertificate,
			errHas: "no certificate (1 PEM markers)"},
		{name: "NULs", in: "\x00\x00SHA256(pkg.mf)= " + sigHex + "\n\x00" + leaf + "\x00", err: ErrNoSignature},
		{name: "empty", in: "", err: ErrNoSignature},
	}
}

type certCase struct {
	name     string
	in       string
	alg      Algorithm
	mf       string
	certs    int
	verifies bool
	warns    []string
	err      error
	errHas   string
}

func TestParseCert(t *testing.T) {
	for _, tc := range certCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCert(strings.NewReader(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "manifest: ") {
					t.Fatalf("err %v, want %v containing %q", err, tc.err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Algorithm != tc.alg || c.ManifestName != tc.mf || len(c.Certificates) != tc.certs {
				t.Fatalf("got %s %q %d certificates, want %s %q %d", c.Algorithm, c.ManifestName, len(c.Certificates), tc.alg, tc.mf, tc.certs)
			}
			if len(c.Warnings) != len(tc.warns) {
				t.Fatalf("warnings %q, want %q", c.Warnings, tc.warns)
			}
			for i, w := range tc.warns {
				if !strings.Contains(c.Warnings[i], w) {
					t.Errorf("warning %d = %q, want %q", i, c.Warnings[i], w)
				}
			}
			if err := c.VerifySignature(pkgManifest); (err == nil) != tc.verifies {
				t.Errorf("VerifySignature: %v, want success %v", err, tc.verifies)
			}
		})
	}
}

// TestParseCertHostile feeds certificate files built to exhaust memory or
// time.
func TestParseCertHostile(t *testing.T) {
	p := getPKI(t)
	head := fmt.Sprintf("SHA256(pkg.mf)= %x\n", sign(t, p.ecLeaf.key, SHA256, pkgManifest))
	leaf := pemOf("CERTIFICATE", p.ecLeaf.cert.Raw)

	// 1000 certificates: the first MaxCertificates are parsed.
	many := head + strings.Repeat(leaf, 1000)
	c, err := ParseCert(strings.NewReader(many))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificates) != MaxCertificates || len(c.Warnings) != 1 || c.Warnings[0] != "968 certificates beyond the first 32 skipped" {
		t.Fatalf("%d certificates, warnings %q", len(c.Certificates), c.Warnings)
	}
	if err := c.VerifySignature(pkgManifest); err != nil {
		t.Error(err)
	}

	// 1000 blocks of other types: one warning each up to the cap.
	c, err = ParseCert(strings.NewReader(head + leaf + strings.Repeat(pemOf("JUNK", []byte{1}), 1000)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != MaxWarnings+1 || c.Warnings[MaxWarnings] != "900 more warnings not shown" {
		t.Fatalf("%d warnings, last %q", len(c.Warnings), c.Warnings[len(c.Warnings)-1])
	}

	// 1000 truncated blocks, then a good one.
	c, err = ParseCert(strings.NewReader(head + strings.Repeat("-----BEGIN CERTIFICATE-----\nMIIB\n", 1000) + leaf))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificates) != 1 || len(c.Warnings) != 1 || c.Warnings[0] != "1000 PEM blocks truncated or malformed, skipped" {
		t.Fatalf("%d certificates, warnings %q", len(c.Certificates), c.Warnings)
	}

	// Beyond the size bound, unread.
	big := head + leaf + strings.Repeat("x", MaxCertSize)
	if _, err := ParseCert(strings.NewReader(big)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a %d-byte .cert: %v", len(big), err)
	}
	if _, err := ParseCert(strings.NewReader("SHA256(pkg.mf)= " + strings.Repeat("ab", 3<<20))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a 6 MiB signature: %v", err)
	}
}

// TestCertChainFromFile runs the whole path a verifier takes: parse the
// .cert, check the signature, classify the chain.
func TestCertChainFromFile(t *testing.T) {
	p := getPKI(t)
	for _, tc := range []struct {
		name   string
		id     identity
		extra  []*x509.Certificate
		status ChainStatus
	}{
		{"RSA", p.rsaLeaf, nil, Trusted},
		{"ECDSA with intermediate", p.interLeaf, []*x509.Certificate{p.inter.cert}, Trusted},
		{"self-signed", p.selfSigned, nil, SelfSigned},
		{"expired", p.expiredLeaf, nil, Expired},
	} {
		file := certFile(SHA512, "pkg.mf", sign(t, tc.id.key, SHA512, pkgManifest), append([]*x509.Certificate{tc.id.cert}, tc.extra...)...)
		c, err := ParseCert(bytes.NewReader(file))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := c.VerifySignature(pkgManifest); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if r := c.VerifyChain(pool(p.rsaCA.cert, p.ecCA.cert), refTime); r.Status != tc.status {
			t.Errorf("%s: chain %s (%v), want %s", tc.name, r.Status, r.Err, tc.status)
		}
	}
}
