package manifest

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"path"
	"strings"
)

// Cert is a parsed .cert file: a signature over a manifest and the
// certificates of the signer.
type Cert struct {
	// Algorithm is the digest the signature was computed with.
	Algorithm Algorithm
	// ManifestName is the manifest the signature line names, e.g.
	// "appliance.mf"; the caller checks that it is the manifest present.
	ManifestName string
	// Signature is the decoded signature: PKCS #1 v1.5 for RSA keys,
	// ASN.1 DER for ECDSA keys.
	Signature []byte
	// Certificates are the parsed certificates in file order; the first is
	// the signer's, the rest are candidate intermediates.
	Certificates []*x509.Certificate
	// Warnings are the lines and PEM blocks ParseCert skipped, and why.
	Warnings []string
}

var pemBegin = []byte("-----BEGIN")

// ParseCert reads a .cert file: a signature line in the manifest grammar,
// "ALG(name.mf)= hex", followed by PEM certificates. As VirtualBox does, it
// splits the file at the first PEM marker and reads the signature from the
// text before it. Lines it cannot use, non-certificate PEM blocks and
// certificates that do not parse are warnings; it fails when reading
// fails, the file exceeds MaxCertSize (ErrTooLarge), no signature line is
// usable (ErrNoSignature) or no certificate parses (ErrNoCertificate).
func ParseCert(r io.Reader) (*Cert, error) {
	data, err := readBounded(r, MaxCertSize, "certificate file")
	if err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	head, body := data, []byte(nil)
	if i := bytes.Index(data, pemBegin); i >= 0 {
		head, body = data[:i], data[i:]
	}
	c := &Cert{}
	var w warnings
	firstProblem := c.readSignature(head, &w)
	if c.Signature == nil {
		if firstProblem != "" {
			return nil, fmt.Errorf("manifest: certificate file: %w (%s)", ErrNoSignature, firstProblem)
		}
		return nil, fmt.Errorf("manifest: certificate file: %w before the first PEM block", ErrNoSignature)
	}
	c.readCertificates(body, &w)
	c.Warnings = w.result()
	if len(c.Certificates) == 0 {
		return nil, fmt.Errorf("manifest: certificate file: %w (%d PEM markers)", ErrNoCertificate, bytes.Count(body, pemBegin))
	}
	return c, nil
}

// readSignature takes the strongest usable signature line in head, and
// returns the first problem found, for the error when there is none.
func (c *Cert) readSignature(head []byte, w *warnings) string {
	first := ""
	problem := func(n int, format string, args ...any) {
		if first == "" {
			first = fmt.Sprintf("line %d: ", n) + fmt.Sprintf(format, args...)
		}
		w.line(n, format, args...)
	}
	sigLine := 0
	eachLine(head, func(n int, s string) bool {
		f, why := splitLine(s)
		if why != "" {
			problem(n, "not a signature line (%s): %s", why, snippet(s))
			return true
		}
		alg, ok := ParseAlgorithm(f.alg)
		switch {
		case !ok:
			problem(n, "unknown digest algorithm %s", snippet(f.alg))
			return true
		case len(f.value) > 2*MaxSignatureSize:
			problem(n, "signature of %d hex digits is longer than any supported key makes (%d bytes)", len(f.value), MaxSignatureSize)
			return true
		}
		sig, err := hex.DecodeString(f.value)
		if err != nil {
			problem(n, "signature is not hexadecimal: %s", snippet(f.value))
			return true
		}
		if c.Signature != nil && alg.strength() <= c.Algorithm.strength() {
			w.line(n, "second signature line ignored; line %d's %s signature is used", sigLine, c.Algorithm)
			return true
		}
		if c.Signature != nil {
			w.line(sigLine, "%s signature ignored for line %d's stronger %s one", c.Algorithm, n, alg)
		}
		if !strings.EqualFold(path.Ext(f.name), ".mf") {
			w.line(n, "the signature names %s, not a .mf manifest", snippet(f.name))
		}
		if alg == MD5 {
			w.line(n, "the signature uses MD5, whose collisions can be forged")
		}
		c.Algorithm, c.ManifestName, c.Signature, sigLine = alg, f.name, sig, n
		return true
	})
	return first
}

// readCertificates parses the CERTIFICATE blocks of body, up to
// MaxCertificates, and warns about everything else it finds there.
func (c *Cert) readCertificates(body []byte, w *warnings) {
	blocks, skipped := 0, 0
	for rest := body; len(rest) > 0; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks++
		switch {
		case strings.Contains(b.Type, "PRIVATE KEY"):
			w.add("PEM block %d is a %s: the signer's secret key was published with the package, so anyone can sign", blocks, snippet(b.Type))
			continue
		case b.Type != "CERTIFICATE":
			w.add("PEM block %d skipped: %s, not CERTIFICATE", blocks, snippet(b.Type))
			continue
		case len(c.Certificates) >= MaxCertificates:
			skipped++
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			w.add("PEM block %d skipped: %v", blocks, err)
			continue
		}
		c.Certificates = append(c.Certificates, cert)
	}
	if skipped > 0 {
		w.add("%d certificates beyond the first %d skipped", skipped, MaxCertificates)
	}
	// pem.Decode passes over malformed and truncated blocks in silence;
	// counting the markers tells the user they were there.
	if bad := bytes.Count(body, pemBegin) - blocks; bad > 0 {
		w.add("%d PEM blocks truncated or malformed, skipped", bad)
	}
}
