package nbd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned makes a certificate that is its own CA, for name, and
// returns it with its PEM files' contents.
func selfSigned(t *testing.T, name string, usage x509.ExtKeyUsage) (tls.Certificate, *x509.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, cert, certPEM, keyPEM
}

// tlsURI is the libnbd URI of an export over TLS, trusting the
// certificates in dir (ca-cert.pem, and client-cert.pem/client-key.pem
// when present).
func tlsURI(socket, name, dir string) string {
	return "nbds+unix:///" + name + "?socket=" + socket + "&tls-certificates=" + dir
}

func TestTLS(t *testing.T) {
	serverCert, _, serverPEM, _ := selfSigned(t, "localhost", x509.ExtKeyUsageServerAuth)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca-cert.pem"), serverPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMem(2<<20, 6)
	cfg := &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}

	t.Run("required", func(t *testing.T) {
		socket, _ := testServer(t, map[string]Export{"disk": m}, Options{TLS: cfg, RequireTLS: true})
		out := run(t, "nbdinfo", "--json", tlsURI(socket, "disk", dir))
		if !strings.Contains(out, `"TLS": true`) {
			t.Errorf("nbdinfo over TLS: %s", out)
		}
		copied := filepath.Join(t.TempDir(), "out.raw")
		run(t, "nbdcopy", tlsURI(socket, "disk", dir), copied)
		checkFile(t, copied, m.bytes())
		// A plain client is refused: every option gets NBD_REP_ERR_TLS_REQD.
		if out, err := execTool(t, "nbdinfo", uri(socket, "disk")).CombinedOutput(); err == nil {
			t.Errorf("a plain client was served where TLS is required: %s", out)
		}
		r := newRaw(t, dialRaw(t, socket))
		r.greet()
		for _, opt := range []uint32{optList, optStructured, optInfo, optGo, 99} {
			if typ := r.simpleOption(opt, nil); typ != repErrTLSReqd {
				t.Errorf("option %d before TLS: reply %#x, want NBD_REP_ERR_TLS_REQD", opt, typ)
			}
		}
	})

	t.Run("optional", func(t *testing.T) {
		socket, _ := testServer(t, map[string]Export{"disk": m}, Options{TLS: cfg})
		run(t, "nbdinfo", "--json", tlsURI(socket, "disk", dir))
		out := run(t, "nbdinfo", "--json", uri(socket, "disk"))
		if !strings.Contains(out, `"TLS": false`) {
			t.Errorf("plain nbdinfo: %s", out)
		}
	})

	t.Run("client certificate", func(t *testing.T) {
		_, clientX509, clientPEM, clientKey := selfSigned(t, "client", x509.ExtKeyUsageClientAuth)
		pool := x509.NewCertPool()
		pool.AddCert(clientX509)
		ccfg := cfg.Clone()
		ccfg.ClientAuth = tls.RequireAndVerifyClientCert
		ccfg.ClientCAs = pool
		socket, _ := testServer(t, map[string]Export{"disk": m}, Options{TLS: ccfg, RequireTLS: true})
		// Without a client certificate the handshake fails.
		if out, err := execTool(t, "nbdinfo", tlsURI(socket, "disk", dir)).CombinedOutput(); err == nil {
			t.Errorf("served without a client certificate: %s", out)
		}
		cdir := t.TempDir()
		for name, b := range map[string][]byte{"ca-cert.pem": serverPEM, "client-cert.pem": clientPEM, "client-key.pem": clientKey} {
			if err := os.WriteFile(filepath.Join(cdir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		copied := filepath.Join(t.TempDir(), "out.raw")
		run(t, "nbdcopy", tlsURI(socket, "disk", cdir), copied)
		checkFile(t, copied, m.bytes())
	})
}
