// Package testpkg builds OVF packages for tests: members written as an OVA
// (tar) or as an unpacked folder, manifests of their digests, and
// certificates signing a manifest with a key whose chain leads to a test
// CA, so that every test makes signed packages the same way.
package testpkg

import (
	"archive/tar"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/ova"
)

// File is one file of a package.
type File struct {
	Name string
	Data []byte
}

// F is a File from a string.
func F(name, data string) File { return File{Name: name, Data: []byte(data)} }

// Hash returns a new hash of a manifest algorithm ("SHA1", "SHA256",
// "SHA512") and its crypto identifier.
func Hash(alg string) (hash.Hash, crypto.Hash) {
	switch alg {
	case "SHA1":
		return sha1.New(), crypto.SHA1
	case "SHA512":
		return sha512.New(), crypto.SHA512
	}
	return sha256.New(), crypto.SHA256
}

// Digest is the hex digest of b under alg.
func Digest(alg string, b []byte) string {
	h, _ := Hash(alg)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Manifest lists the files' digests in the canonical "ALG(name)= hex" form.
func Manifest(alg string, files ...File) File {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s(%s)= %s\n", alg, f.Name, Digest(alg, f.Data))
	}
	return File{Data: []byte(b.String())}
}

// Named gives the file a name.
func (f File) Named(name string) File { f.Name = name; return f }

// Signer is a signing key with a leaf certificate issued by a test CA.
type Signer struct {
	Key   crypto.Signer
	Leaf  *x509.Certificate
	DER   []byte
	CA    *x509.Certificate
	Pool  *x509.CertPool // trusts the CA
	CAPEM []byte
}

// NewSigner makes a CA and a leaf for key (a fresh ECDSA key when nil).
func NewSigner(t testing.TB, key crypto.Signer) *Signer {
	t.Helper()
	if key == nil {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ovfmount test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Appliance Vendor"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Signer{Key: key, Leaf: leaf, DER: der, CA: ca, Pool: pool,
		CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
}

// Sign returns a .cert that signs mf (the bytes of the manifest named
// mfName) under alg with the signer's key, or with by when it is set (a
// signature by someone else than the certificate says).
func (s *Signer) Sign(t testing.TB, alg, mfName string, mf []byte, by crypto.Signer) []byte {
	t.Helper()
	h, ch := Hash(alg)
	h.Write(mf)
	key := s.Key
	if by != nil {
		key = by
	}
	sig, err := key.Sign(rand.Reader, h.Sum(nil), ch)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte(fmt.Sprintf("%s(%s)= %x\n", alg, mfName, sig))
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.DER})...)
}

// WriteCA writes the signer's CA as a PEM file (for --ca) and returns its
// path.
func (s *Signer) WriteCA(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(p, s.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteOVA writes the files, in order, as a tar archive at path.
func WriteOVA(t testing.TB, path string, files ...File) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	mt := time.Unix(1700000000, 0)
	for _, fl := range files {
		if err := tw.WriteHeader(&tar.Header{Name: fl.Name, Mode: 0o644, Size: int64(len(fl.Data)), ModTime: mt, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(fl.Data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// WriteFolder writes the files into dir (creating subfolders).
func WriteFolder(t testing.TB, dir string, files ...File) {
	t.Helper()
	for _, fl := range files {
		p := filepath.Join(dir, filepath.FromSlash(fl.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, fl.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Descriptor is a minimal OVF descriptor whose References name the hrefs,
// each a disk of the DiskSection when it ends in a disk's extension.
func Descriptor(hrefs ...string) []byte {
	var refs, disks strings.Builder
	for i, h := range hrefs {
		fmt.Fprintf(&refs, `<File ovf:id="file%d" ovf:href=%q/>`, i+1, h)
		for _, ext := range []string{".vmdk", ".vhd", ".vhdx", ".qcow2", ".img"} {
			if strings.HasSuffix(h, ext) {
				fmt.Fprintf(&disks, `<Disk ovf:diskId="disk%d" ovf:fileRef="file%d"/>`, i+1, i+1)
			}
		}
	}
	return []byte(`<?xml version="1.0"?>` + "\n" +
		`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">` +
		`<References>` + refs.String() + `</References><DiskSection><Info>disks</Info>` + disks.String() + `</DiskSection></Envelope>`)
}

// OpenArchive indexes the OVA at path, closing it when the test ends, and
// returns its index and the file's information (for ova.FileIdentity).
func OpenArchive(t testing.TB, path string) (*ova.Archive, os.FileInfo) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	a, err := ova.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}
