package manifest

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
)

// minRSABits is the smallest RSA modulus accepted: crypto/rsa refuses
// shorter keys, and a signature from one proves nothing.
const minRSABits = 1024

// VerifySignature checks c's signature over manifestBytes, the exact bytes
// of the .mf file (Manifest.Raw), with the first certificate's public key
// and c.Algorithm. RSA keys use PKCS #1 v1.5, which ovftool and
// `openssl dgst -sign` write; ECDSA keys use an ASN.1 signature. A
// signature made over other bytes, with another key or with another digest
// fails with ErrBadSignature; a key or algorithm this package does not
// verify fails with ErrUnsupported. It says nothing about whether the
// signer is trusted: that is VerifyChain.
func (c *Cert) VerifySignature(manifestBytes []byte) error {
	if len(c.Certificates) == 0 {
		return fmt.Errorf("manifest: verifying the signature: %w", ErrNoCertificate)
	}
	h := c.Algorithm.New()
	if h == nil {
		return fmt.Errorf("manifest: signature digest %s: %w", snippet(string(c.Algorithm)), ErrUnsupported)
	}
	h.Write(manifestBytes)
	sum := h.Sum(nil)
	signer := c.Certificates[0]
	switch pub := signer.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("manifest: signer's RSA key has %d bits, fewer than %d: %w", bits, minRSABits, ErrUnsupported)
		}
		if err := rsa.VerifyPKCS1v15(pub, c.Algorithm.crypto(), sum, c.Signature); err != nil {
			return fmt.Errorf("manifest: %w: %s RSA signature does not verify with the key of %s", ErrBadSignature, c.Algorithm, signer.Subject)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, sum, c.Signature) {
			return fmt.Errorf("manifest: %w: %s ECDSA signature does not verify with the key of %s", ErrBadSignature, c.Algorithm, signer.Subject)
		}
	default:
		return fmt.Errorf("manifest: signer's %s key: %w (RSA and ECDSA are)", signer.PublicKeyAlgorithm, ErrUnsupported)
	}
	return nil
}
