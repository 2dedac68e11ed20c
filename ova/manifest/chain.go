package manifest

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ChainStatus classifies the signer's certificate.
type ChainStatus string

const (
	// Trusted: a chain from the signer to one of the roots verifies at the
	// given time.
	Trusted ChainStatus = "trusted"
	// Expired: such a chain verifies, but only at a time when the signer's
	// or another chain certificate was valid, not at the given time. OVF
	// signatures carry no timestamp, so the signature may well predate the
	// expiry; VirtualBox only warns.
	Expired ChainStatus = "expired"
	// SelfSigned: the signer's certificate is signed by its own key and no
	// root vouches for it, so it proves nothing about who signed.
	SelfSigned ChainStatus = "self-signed"
	// Untrusted: no chain leads from the signer to the roots.
	Untrusted ChainStatus = "untrusted"
)

// ChainResult is the verdict of VerifyChain.
type ChainResult struct {
	Status ChainStatus
	// Signer is the subject of the signer's certificate, in the string
	// form of its distinguished name ("CN=...,O=...").
	Signer string
	// Chain is the verified chain, signer first and root last, when Status
	// is Trusted or Expired.
	Chain []*x509.Certificate
	// Err says why the status is not Trusted; nil when it is.
	Err error
}

// maxTimeShifts bounds the retries at another time, one per certificate
// of a chain found out of its validity: the signer, an intermediate, a root.
const maxTimeShifts = 3

// VerifyChain checks the signer's certificate (the first) against roots,
// the system trust store when roots is nil, at time at, using the other
// certificates of the .cert file as intermediates and accepting any
// extended key usage (code-signing certificates rarely list one that
// crypto/x509 would accept by default). It classifies rather than fails:
// see ChainStatus. VirtualBox uses no intermediates from the .cert; using
// them accepts more genuine packages and trusts nothing new, since every
// chain must still end at one of the roots. A zero at means now.
func (c *Cert) VerifyChain(roots *x509.CertPool, at time.Time) ChainResult {
	if at.IsZero() {
		at = time.Now()
	}
	if len(c.Certificates) == 0 {
		return ChainResult{Status: Untrusted, Err: fmt.Errorf("manifest: %w", ErrNoCertificate)}
	}
	leaf := c.Certificates[0]
	res := ChainResult{Signer: leaf.Subject.String()}
	inter := x509.NewCertPool()
	for _, ic := range c.Certificates[1:] {
		inter.AddCert(ic)
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}

	var expiry error // the first out-of-validity error, at time at
	var err error    // the last error, naming the trust problem if any
	for shift := 0; ; shift++ {
		var chains [][]*x509.Certificate
		chains, err = leaf.Verify(opts)
		if err == nil {
			res.Chain = chains[0]
			if expiry == nil {
				res.Status = Trusted
			} else {
				res.Status, res.Err = Expired, fmt.Errorf("manifest: signer's chain: %w", expiry)
			}
			return res
		}
		var inv x509.CertificateInvalidError
		if shift == maxTimeShifts || !errors.As(err, &inv) || inv.Reason != x509.Expired || inv.Cert == nil {
			break
		}
		if expiry == nil {
			expiry = err
		}
		// Retry at the nearest instant inside the offending certificate's
		// validity, to learn whether time is the only problem.
		if opts.CurrentTime.After(inv.Cert.NotAfter) {
			opts.CurrentTime = inv.Cert.NotAfter
		} else {
			opts.CurrentTime = inv.Cert.NotBefore
		}
	}

	res.Status = Untrusted
	if isSelfSigned(leaf) {
		res.Status = SelfSigned
		err = errors.New("the certificate is signed by its own key and is not among the roots")
	}
	if expiry != nil {
		res.Err = fmt.Errorf("manifest: signer's chain: %v; also %w", err, expiry)
	} else {
		res.Err = fmt.Errorf("manifest: signer's chain: %w", err)
	}
	return res
}

// isSelfSigned reports whether cert names itself as issuer and its
// signature verifies with its own key. A certificate signed with SHA-1,
// which crypto/x509 no longer checks, counts as self-signed on its names
// alone: it is at least self-issued, and certainly not vouched for.
func isSelfSigned(cert *x509.Certificate) bool {
	if !bytes.Equal(cert.RawSubject, cert.RawIssuer) {
		return false
	}
	err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature)
	var insecure x509.InsecureAlgorithmError
	return err == nil || errors.As(err, &insecure)
}
