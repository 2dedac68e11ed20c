package manifest

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerifyChain(t *testing.T) {
	p := getPKI(t)
	certs := func(ids ...identity) []*x509.Certificate {
		var out []*x509.Certificate
		for _, id := range ids {
			out = append(out, id.cert)
		}
		return out
	}
	tests := []struct {
		name     string
		certs    []*x509.Certificate
		roots    *x509.CertPool
		at       time.Time
		status   ChainStatus
		signer   string
		chainLen int
		errHas   []string
	}{
		{"RSA leaf under its root", certs(p.rsaLeaf), pool(p.rsaCA.cert), refTime,
			Trusted, "CN=RSA Appliance Signer,O=ovfmount tests", 2, nil},
		{"ECDSA leaf under its root", certs(p.ecLeaf, p.ecCA), pool(p.ecCA.cert), refTime,
			Trusted, "CN=ECDSA Appliance Signer,O=ovfmount tests", 2, nil},
		{"ECDSA leaf, another root", certs(p.ecLeaf), pool(p.rsaCA.cert), refTime,
			Untrusted, "CN=ECDSA Appliance Signer,O=ovfmount tests", 0, []string{"unknown authority"}},
		{"ECDSA leaf, empty pool", certs(p.ecLeaf, p.ecCA), x509.NewCertPool(), refTime,
			Untrusted, "CN=ECDSA Appliance Signer,O=ovfmount tests", 0, []string{"unknown authority"}},
		{"intermediate from the .cert", certs(p.interLeaf, p.inter), pool(p.ecCA.cert), refTime,
			Trusted, "CN=Signer Under Intermediate,O=ovfmount tests", 3, nil},
		{"intermediate missing", certs(p.interLeaf), pool(p.ecCA.cert), refTime,
			Untrusted, "CN=Signer Under Intermediate,O=ovfmount tests", 0, []string{"unknown authority"}},
		{"self-signed", certs(p.selfSigned), x509.NewCertPool(), refTime,
			SelfSigned, "CN=Self Signed Vendor,O=ovfmount tests", 0, []string{"signed by its own key"}},
		{"self-signed against the system roots", certs(p.selfSigned), nil, refTime,
			SelfSigned, "CN=Self Signed Vendor,O=ovfmount tests", 0, []string{"signed by its own key"}},
		{"self-signed, pinned by the caller", certs(p.selfSigned), pool(p.selfSigned.cert), refTime,
			Trusted, "CN=Self Signed Vendor,O=ovfmount tests", 1, nil},
		{"self-signed and expired", certs(p.selfSigned), x509.NewCertPool(), refTime.Add(2 * 365 * 24 * time.Hour),
			SelfSigned, "CN=Self Signed Vendor,O=ovfmount tests", 0, []string{"signed by its own key", "also x509: certificate has expired"}},
		{"expired leaf", certs(p.expiredLeaf), pool(p.ecCA.cert), refTime,
			Expired, "CN=Expired Signer,O=ovfmount tests", 2, []string{"certificate has expired or is not yet valid"}},
		{"not yet valid leaf", certs(p.futureLeaf), pool(p.ecCA.cert), refTime,
			Expired, "CN=Future Signer,O=ovfmount tests", 2, []string{"is before"}},
		{"expired leaf, unknown root", certs(p.expiredLeaf), x509.NewCertPool(), refTime,
			Untrusted, "CN=Expired Signer,O=ovfmount tests", 0, []string{"unknown authority", "also x509: certificate has expired"}},
		{"expired leaf at a time it was valid", certs(p.expiredLeaf), pool(p.ecCA.cert), refTime.Add(-365 * 24 * time.Hour),
			Trusted, "CN=Expired Signer,O=ovfmount tests", 2, nil},
		{"expired intermediate", certs(p.underExp, p.expiredInter), pool(p.ecCA.cert), refTime,
			Expired, "CN=Signer Under Expired Intermediate,O=ovfmount tests", 3, []string{"expired"}},
		{"no certificates", nil, pool(p.ecCA.cert), refTime, Untrusted, "", 0, []string{"no certificate"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cert{Algorithm: SHA256, Certificates: tc.certs}
			r := c.VerifyChain(tc.roots, tc.at)
			if r.Status != tc.status || r.Signer != tc.signer || len(r.Chain) != tc.chainLen {
				t.Fatalf("got %s signer %q chain %d (err %v), want %s %q %d", r.Status, r.Signer, len(r.Chain), r.Err, tc.status, tc.signer, tc.chainLen)
			}
			if (r.Err == nil) != (tc.status == Trusted) {
				t.Fatalf("status %s with error %v", r.Status, r.Err)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(r.Err.Error(), s) {
					t.Errorf("error %q lacks %q", r.Err, s)
				}
			}
			if r.Err != nil && !strings.HasPrefix(r.Err.Error(), "manifest: ") {
				t.Errorf("error %q lacks the package prefix", r.Err)
			}
		})
	}
	// A zero time means now, long after the expired signer's end.
	if r := (&Cert{Certificates: []*x509.Certificate{p.expiredLeaf.cert}}).VerifyChain(pool(p.ecCA.cert), time.Time{}); r.Status != Expired {
		t.Errorf("expired signer at the zero time: %s (%v)", r.Status, r.Err)
	}
	var inv x509.CertificateInvalidError
	r := (&Cert{Certificates: []*x509.Certificate{p.expiredLeaf.cert}}).VerifyChain(pool(p.ecCA.cert), refTime)
	if !errors.As(r.Err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("an expired chain's error does not unwrap to x509.CertificateInvalidError: %v", r.Err)
	}
}
