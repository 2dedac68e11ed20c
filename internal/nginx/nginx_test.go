package nginx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The server serves ranges, redirects, asks for its token, speaks TLS
// with a certificate only its CA vouches for, and logs every request.
func TestServer(t *testing.T) {
	if _, err := Binary(); errors.Is(err, ErrMissing) {
		if os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f.bin"), []byte("0123456789"), 0o644)
	s, err := Start(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	get := func(c *http.Client, url string, h ...string) (int, string, error) {
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if code, body, err := get(http.DefaultClient, s.URL+"/f.bin", "Range", "bytes=2-4"); err != nil || code != 206 || body != "234" {
		t.Errorf("range: %d %q %v", code, body, err)
	}
	if code, body, err := get(http.DefaultClient, s.URL+"/hop1/f.bin"); err != nil || code != 200 || body != "0123456789" {
		t.Errorf("redirects: %d %q %v", code, body, err)
	}
	if code, _, _ := get(http.DefaultClient, s.URL+"/private/f.bin"); code != 401 {
		t.Errorf("private without the token: %d", code)
	}
	if code, body, _ := get(http.DefaultClient, s.URL+"/private/f.bin", "Authorization", "Bearer "+s.Token); code != 200 || body != "0123456789" {
		t.Errorf("private with the token: %d %q", code, body)
	}
	if _, _, err := get(http.DefaultClient, s.TLSURL+"/f.bin"); err == nil {
		t.Error("the test CA is trusted without being given")
	}
	pem, _ := os.ReadFile(s.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body, err := get(tc, s.TLSURL+"/f.bin"); err != nil || code != 200 || body != "0123456789" {
		t.Errorf("https: %d %q %v", code, body, err)
	}
	log := s.Log(0)
	if len(log) < 7 || !strings.Contains(strings.Join(log, "\n"), `"bytes=2-4" 206 3`) || s.Requests() != len(log) {
		t.Errorf("access log:\n%s", strings.Join(log, "\n"))
	}
}
