package manifest

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// pkgManifest is the .mf the signature tests sign.
var pkgManifest = []byte("SHA256(pkg.ovf)= " + sha256Hex + "\r\nSHA256(pkg-disk1.vmdk)= " +
	strings.Repeat("ab", 32) + "\r\n")

func TestVerifySignature(t *testing.T) {
	p := getPKI(t)
	edited := bytes.Replace(pkgManifest, []byte("abab"), []byte("abac"), 1)
	flipped := bytes.Clone(pkgManifest)
	flipped[len(flipped)/2] ^= 1

	type signer struct {
		name string
		id   identity
		algs []Algorithm
	}
	signers := []signer{
		{"RSA 2048", p.rsaLeaf, []Algorithm{SHA1, SHA256, SHA512, MD5}},
		{"ECDSA P-256", p.ecLeaf, []Algorithm{SHA1, SHA256, SHA512}},
	}
	for _, s := range signers {
		for _, alg := range s.algs {
			t.Run(s.name+"/"+string(alg), func(t *testing.T) {
				sig := sign(t, s.id.key, alg, pkgManifest)
				c, err := ParseCert(bytes.NewReader(certFile(alg, "pkg.mf", sig, s.id.cert, p.rsaCA.cert)))
				if err != nil {
					t.Fatal(err)
				}
				if c.Algorithm != alg || c.ManifestName != "pkg.mf" || len(c.Certificates) != 2 || !bytes.Equal(c.Signature, sig) {
					t.Fatalf("parsed %+v", c)
				}
				if err := c.VerifySignature(pkgManifest); err != nil {
					t.Fatalf("genuine signature: %v", err)
				}
				// The tampered twins.
				otherKey := p.otherEC
				if s.id.cert.PublicKeyAlgorithm == x509.RSA {
					otherKey = p.rsaCA.key
				}
				wrongAlg := SHA256
				if alg == SHA256 {
					wrongAlg = SHA512
				}
				twins := []struct {
					name string
					c    *Cert
					mf   []byte
				}{
					{"flipped byte in the .mf", c, flipped},
					{"edited digest line", c, edited},
					{"empty .mf", c, nil},
					{"signed with another key", withSig(c, sign(t, otherKey, alg, pkgManifest)), pkgManifest},
					{"signed with another digest than named", withSig(c, sign(t, s.id.key, wrongAlg, pkgManifest)), pkgManifest},
					{"signature truncated", withSig(c, sig[:len(sig)-1]), pkgManifest},
					{"another signer's certificate first", withCerts(c, p.selfSigned.cert), pkgManifest},
				}
				for _, tw := range twins {
					if err := tw.c.VerifySignature(tw.mf); !errors.Is(err, ErrBadSignature) {
						t.Errorf("%s: %v, want ErrBadSignature", tw.name, err)
					} else if !strings.HasPrefix(err.Error(), "manifest: ") {
						t.Errorf("%s: error %q lacks the package prefix", tw.name, err)
					}
				}
			})
		}
	}
}

func withSig(c *Cert, sig []byte) *Cert {
	d := *c
	d.Signature = sig
	return &d
}

func withCerts(c *Cert, certs ...*x509.Certificate) *Cert {
	d := *c
	d.Certificates = certs
	return &d
}

// TestVerifySignatureUnsupported covers keys and algorithms no OVF
// producer uses: they must be told apart from tampering.
func TestVerifySignatureUnsupported(t *testing.T) {
	p := getPKI(t)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "Ed25519 Signer"},
		NotBefore: refTime.Add(-1e15), NotAfter: refTime.Add(1e15)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, edKey.Public(), edKey)
	if err != nil {
		t.Fatal(err)
	}
	edCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	edSig, err := edKey.Sign(rand.Reader, pkgManifest, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	ok := &Cert{Algorithm: SHA256, Signature: sign(t, p.ecLeaf.key, SHA256, pkgManifest), Certificates: []*x509.Certificate{p.ecLeaf.cert}}
	tests := []struct {
		name string
		c    *Cert
		want error
	}{
		{"Ed25519 key", &Cert{Algorithm: SHA256, Signature: edSig, Certificates: []*x509.Certificate{edCert}}, ErrUnsupported},
		{"unknown algorithm", &Cert{Algorithm: "SHA384", Signature: ok.Signature, Certificates: ok.Certificates}, ErrUnsupported},
		{"512-bit RSA key", &Cert{Algorithm: SHA256, Signature: make([]byte, 64), Certificates: []*x509.Certificate{
			{PublicKey: &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 511), E: 65537}}}}, ErrUnsupported},
		{"no certificate", &Cert{Algorithm: SHA256, Signature: ok.Signature}, ErrNoCertificate},
		{"genuine", ok, nil},
	}
	for _, tc := range tests {
		if err := tc.c.VerifySignature(pkgManifest); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
