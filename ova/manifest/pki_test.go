package manifest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"
)

// refTime is the "now" of every chain test, so that no result depends on
// the day the tests run.
var refTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// identity is a key and the certificate for it.
type identity struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// testPKI is the signing material the tests share: RSA 2048 and ECDSA
// P-256 hierarchies, an intermediate, a self-signed signer, an expired
// signer and a signer not yet valid. RSA keys are slow to make under the
// race detector, so it is built once per test binary.
type testPKI struct {
	rsaCA, rsaLeaf          identity
	ecCA, ecLeaf            identity
	inter, interLeaf        identity
	expiredInter, underExp  identity
	selfSigned              identity
	expiredLeaf, futureLeaf identity
	otherEC                 crypto.Signer
}

var (
	pkiOnce sync.Once
	pkiVal  *testPKI
	pkiErr  error
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() { pkiVal, pkiErr = buildPKI() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

var serial int64

func buildPKI() (*testPKI, error) {
	p := &testPKI{}
	rsaKey := func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }
	ecKey := func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	year := 365 * 24 * time.Hour
	steps := []struct {
		dst      *identity
		keygen   func() (crypto.Signer, error)
		cn       string
		ca       bool
		parent   *identity // nil: self-signed
		from, to time.Time
	}{
		{&p.rsaCA, rsaKey, "Test RSA Root", true, nil, refTime.Add(-10 * year), refTime.Add(10 * year)},
		{&p.rsaLeaf, rsaKey, "RSA Appliance Signer", false, &p.rsaCA, refTime.Add(-year), refTime.Add(year)},
		{&p.ecCA, ecKey, "Test ECDSA Root", true, nil, refTime.Add(-10 * year), refTime.Add(10 * year)},
		{&p.ecLeaf, ecKey, "ECDSA Appliance Signer", false, &p.ecCA, refTime.Add(-year), refTime.Add(year)},
		{&p.inter, ecKey, "Test Intermediate", true, &p.ecCA, refTime.Add(-5 * year), refTime.Add(5 * year)},
		{&p.interLeaf, ecKey, "Signer Under Intermediate", false, &p.inter, refTime.Add(-year), refTime.Add(year)},
		{&p.expiredInter, ecKey, "Expired Intermediate", true, &p.ecCA, refTime.Add(-5 * year), refTime.Add(-24 * time.Hour)},
		{&p.underExp, ecKey, "Signer Under Expired Intermediate", false, &p.expiredInter, refTime.Add(-2 * year), refTime.Add(year)},
		{&p.selfSigned, ecKey, "Self Signed Vendor", false, nil, refTime.Add(-year), refTime.Add(year)},
		{&p.expiredLeaf, ecKey, "Expired Signer", false, &p.ecCA, refTime.Add(-2 * year), refTime.Add(-24 * time.Hour)},
		{&p.futureLeaf, ecKey, "Future Signer", false, &p.ecCA, refTime.Add(24 * time.Hour), refTime.Add(year)},
	}
	for _, s := range steps {
		key, err := s.keygen()
		if err != nil {
			return nil, err
		}
		serial++
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: s.cn, Organization: []string{"ovfmount tests"}},
			NotBefore:             s.from,
			NotAfter:              s.to,
			BasicConstraintsValid: true,
			IsCA:                  s.ca,
			KeyUsage:              x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		}
		if s.ca {
			tmpl.KeyUsage |= x509.KeyUsageCertSign
			tmpl.ExtKeyUsage = nil
		}
		parentCert, parentKey := tmpl, key
		if s.parent != nil {
			parentCert, parentKey = s.parent.cert, s.parent.key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.cn, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		*s.dst = identity{key: key, cert: cert}
	}
	var err error
	p.otherEC, err = ecKey()
	return p, err
}

// sign signs data as `openssl dgst -<alg> -sign` does: PKCS #1 v1.5 for
// RSA keys, ASN.1 DER for ECDSA keys.
func sign(t testing.TB, key crypto.Signer, alg Algorithm, data []byte) []byte {
	t.Helper()
	h := alg.New()
	h.Write(data)
	sig, err := key.Sign(rand.Reader, h.Sum(nil), alg.crypto())
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// certFile writes a .cert as ovftool does: the signature line, then the
// certificates in PEM.
func certFile(alg Algorithm, mfName string, sig []byte, certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s(%s)= %x\n", alg, mfName, sig)
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
