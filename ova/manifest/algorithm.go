package manifest

import (
	"crypto"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strings"
)

// Algorithm is a digest algorithm named in a manifest or certificate line,
// in normalised form: one of the constants below.
type Algorithm string

// The digest algorithms OVF producers write: SHA1 (OVF 1.x), SHA256 (OVF
// 2.x, ovftool 4.2 and later), SHA512 (ovftool, VirtualBox) and MD5
// (VirtualBox's IPRT).
const (
	MD5    Algorithm = "MD5"
	SHA1   Algorithm = "SHA1"
	SHA256 Algorithm = "SHA256"
	SHA512 Algorithm = "SHA512"
)

// ParseAlgorithm normalises an algorithm name as written in a manifest:
// case is ignored and the hyphenated spelling is accepted, so Oracle OLVM's
// "SHA-256" and "sha256" are both SHA256. It reports false for any other
// name, such as IPRT's "SIZE".
func ParseAlgorithm(s string) (Algorithm, bool) {
	for _, a := range [...]struct {
		plain, hyphen string
		alg           Algorithm
	}{{"SHA256", "SHA-256", SHA256}, {"SHA1", "SHA-1", SHA1}, {"SHA512", "SHA-512", SHA512}, {"MD5", "MD-5", MD5}} {
		if strings.EqualFold(s, a.plain) || strings.EqualFold(s, a.hyphen) {
			return a.alg, true
		}
	}
	return "", false
}

// New returns a new hash computing a, or nil when a is not one of the
// constants.
func (a Algorithm) New() hash.Hash {
	switch a {
	case MD5:
		return md5.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	}
	return nil
}

// Size is the length of a's digest in bytes, or 0 when a is not one of the
// constants.
func (a Algorithm) Size() int {
	switch a {
	case MD5:
		return md5.Size
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA512:
		return sha512.Size
	}
	return 0
}

// crypto names a for the signature verifiers, which encode the algorithm
// in the signed data (PKCS #1 v1.5 DigestInfo).
func (a Algorithm) crypto() crypto.Hash {
	switch a {
	case MD5:
		return crypto.MD5
	case SHA1:
		return crypto.SHA1
	case SHA256:
		return crypto.SHA256
	case SHA512:
		return crypto.SHA512
	}
	return 0
}

// strength orders the algorithms by collision resistance, so that where a
// file or a manifest is covered twice the stronger digest is preferred, as
// VirtualBox prefers SHA-2 over SHA1 and MD5.
func (a Algorithm) strength() int {
	switch a {
	case MD5:
		return 1
	case SHA1:
		return 2
	case SHA256:
		return 3
	case SHA512:
		return 4
	}
	return 0
}
