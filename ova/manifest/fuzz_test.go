package manifest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParse parses arbitrary manifests. Whatever the input, Parse must not
// panic or fail (it is under the size bound), every entry must be usable
// as is, the warnings must stay capped, and Lookup must find each entry.
func FuzzParse(f *testing.F) {
	for _, tc := range manifestCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte("SHA1 (a) (b) = " + sha1Hex + "\r\nSHA-256(./c)=" + sha256Hex))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Parse failed under the size bound: %v", err)
		}
		if !bytes.Equal(m.Raw, data) {
			t.Fatal("Raw differs from the input")
		}
		if len(m.Warnings) > MaxWarnings+1 {
			t.Fatalf("%d warnings", len(m.Warnings))
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range m.Entries {
			if len(e.Digest) != e.Algorithm.Size() || e.Algorithm.Size() == 0 || e.Name == "" ||
				strings.IndexByte(e.Name, 0) >= 0 || e.Line < 1 || e.Line > lines {
				t.Fatalf("unusable entry %+v", e)
			}
			if len(m.LookupAll(e.Name)) == 0 {
				t.Fatalf("Lookup(%q) finds nothing", e.Name)
			}
		}
		Coverage(m, []string{"x.ovf", "a", "./b"}, "x.ovf", nil)
	})
}

// FuzzParseCert parses arbitrary certificate files. ParseCert must fail
// only with its sentinels, and what it accepts must be safe to verify.
func FuzzParseCert(f *testing.F) {
	for _, tc := range certCases(f) {
		f.Add([]byte(tc.in))
	}
	p := getPKI(f)
	roots := pool(p.ecCA.cert)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCert(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNoSignature) && !errors.Is(err, ErrNoCertificate) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(c.Signature) == 0 || len(c.Signature) > MaxSignatureSize || c.Algorithm.Size() == 0 ||
			len(c.Certificates) == 0 || len(c.Certificates) > MaxCertificates || len(c.Warnings) > MaxWarnings+1 {
			t.Fatalf("implausible result: %s sig %d certs %d warnings %d", c.Algorithm, len(c.Signature), len(c.Certificates), len(c.Warnings))
		}
		if err := c.VerifySignature(pkgManifest); err != nil && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("VerifySignature: %v", err)
		}
		r := c.VerifyChain(roots, refTime)
		if (r.Status == Trusted) != (r.Err == nil) || r.Signer != c.Certificates[0].Subject.String() {
			t.Fatalf("VerifyChain: %+v", r)
		}
	})
}
