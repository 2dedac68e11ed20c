package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// errNoPEM says the --ca file holds no PEM certificate.
var errNoPEM = errors.New("no PEM certificate")

// caBundle is the --ca file. It has two users, the package signer's chain
// and an https archive's server, and is read and parsed at most once for
// both: on first use, so that a command that needs no CA (info on a local
// archive) does not fail on a bad file it would never read. Start-up is
// sequential, so there is no locking.
type caBundle struct {
	path   string
	loaded bool
	pool   *x509.CertPool
	err    error
}

// roots returns the system's roots plus the file's certificates, as
// ovftool's and curl's --cacert users expect a company's own CA to be
// trusted, or nil (the system's roots) when no file was given. The error
// is the file's read error, or errNoPEM; each user words it as it always
// has (see the callers).
func (c *caBundle) roots() (*x509.CertPool, error) {
	if c == nil || c.path == "" {
		return nil, nil
	}
	if !c.loaded {
		c.pool, c.err = loadCA(c.path)
		c.loaded = true
	}
	return c.pool, c.err
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %w", path, errNoPEM)
	}
	return pool, nil
}

// cas is the --ca bundle of these flags, made on first use (the flags are
// parsed by then), and the same one for every later user.
func (v *verify) cas() *caBundle {
	if v.ca == nil || v.ca.path != v.caFile {
		v.ca = &caBundle{path: v.caFile}
	}
	return v.ca
}
