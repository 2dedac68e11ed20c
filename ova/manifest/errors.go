package manifest

import "errors"

// Sentinel errors, for callers that must tell the failures apart with
// errors.Is: a bad signature means tampering, while an unsupported key or a
// missing certificate means the package cannot be checked at all.
var (
	// ErrTooLarge means a manifest or certificate file exceeds its size
	// bound; no real package comes near it, so it is refused unread.
	ErrTooLarge = errors.New("file too large")
	// ErrNoSignature means a certificate file holds no usable signature
	// line before its first PEM block.
	ErrNoSignature = errors.New("no signature line")
	// ErrNoCertificate means a certificate file holds no parsable X.509
	// certificate, so there is no key to check the signature with.
	ErrNoCertificate = errors.New("no certificate")
	// ErrBadSignature means the signature does not match the manifest's
	// bytes under the signer's key: the manifest was altered, signed with
	// another key, or signed with another digest than the one named.
	ErrBadSignature = errors.New("signature does not match the manifest")
	// ErrUnsupported means the signer's key type, key size or digest
	// algorithm is one this package does not verify.
	ErrUnsupported = errors.New("unsupported key or algorithm")
)
