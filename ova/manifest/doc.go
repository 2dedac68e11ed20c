// Package manifest reads the integrity metadata of an OVF package: the
// manifest (.mf) that lists a digest for every file, and the certificate
// file (.cert) that signs the manifest.
//
// # What it promises
//
// [Parse] reads a manifest as leniently as VirtualBox and govmomi do, so
// that every appliance a peer tool accepts can still be checked here: the
// canonical "SHA256(name)= hex" form, IPRT's "SHA256 (name) = hex", no
// blank after "=", CRLF line ends, a byte order mark, upper-case hex, and
// Oracle's "SHA-256" spelling. Names are read up to the last ")" on the
// line, so names holding blanks, parentheses or "=" survive. A line it
// cannot use (a garbage line, an unknown algorithm, a digest of the wrong
// length) becomes a warning naming the line, never a failure: a forensic
// examiner wants to see every other digest checked even when one line is
// damaged.
//
// [ParseCert] reads the signature line and the PEM certificates of a .cert
// file. [Cert.VerifySignature] checks the signature over the exact bytes of
// the .mf with the first certificate's key (RSA PKCS #1 v1.5, as ovftool
// and `openssl dgst -sign` write it, or ECDSA). [Cert.VerifyChain]
// classifies the signer's certificate as trusted, untrusted, self-signed or
// expired instead of failing, because OVF has no timestamps: an expired
// signer still says who signed.
//
// [Coverage] compares a manifest with the files actually present. Which
// manifest is a package's own is not decided here: a package has one, named
// after its descriptor (see package appliance), and other manifests vouch
// for nothing.
//
// # What it refuses
//
// Every input is hostile. A manifest larger than [MaxManifestSize] or a
// certificate file larger than [MaxCertSize] fails with [ErrTooLarge];
// entries beyond [MaxEntries], certificates beyond [MaxCertificates] and
// warnings beyond [MaxWarnings] are dropped with a summary, so memory and
// time stay proportional to the input's size. The package never reads
// files or the network, with one exception the caller asks for: passing
// nil roots to [Cert.VerifyChain] loads the system trust store.
//
// It does not resolve names against a descriptor's folder, decide which
// files a package must contain (that is the descriptor's job), hash file
// contents, check revocation (OVF packages carry no CRL or OCSP data and
// this package uses no network), or accept RSA-PSS, DSA and Ed25519
// signatures, which no OVF producer writes.
package manifest
