package s3

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/internal/versitygw"
	"github.com/ovfmount/ovfmount/remote"
)

const testBucket = "appliances"

// awsVars are every variable the SDK's default chain reads that a test
// must not inherit from the host.
var awsVars = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
	"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
}

// isolateAWS gives the test an AWS environment of its own: no credentials
// or region from the host, empty shared config and credentials files
// (returned, for the test to fill), and no instance metadata service,
// which lives at an address tests must never reach.
func isolateAWS(t *testing.T) (configFile, credentialsFile string) {
	t.Helper()
	for _, v := range awsVars {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	dir := t.TempDir()
	configFile = filepath.Join(dir, "config")
	credentialsFile = filepath.Join(dir, "credentials")
	for _, f := range []string{configFile, credentialsFile} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", configFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credentialsFile)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return configFile, credentialsFile
}

// envCredentials puts the server's credentials in the environment.
func envCredentials(t *testing.T, s *versitygw.Server) {
	t.Setenv("AWS_ACCESS_KEY_ID", s.Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.Secret)
}

// startS3 starts versitygw with one bucket, and an isolated AWS
// environment holding its credentials.
func startS3(t *testing.T) *versitygw.Server {
	t.Helper()
	s := versitygw.Start(t)
	isolateAWS(t)
	envCredentials(t, s)
	if err := s.CreateBucket(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	return s
}

// testOptions are fast options for tests against endpoint: small blocks,
// short timeouts.
func testOptions(endpoint string) Options {
	var o Options
	o.Endpoint = endpoint
	o.Region = "us-east-1"
	o.BlockSize = remote.MinBlockSize
	o.RequestTimeout = 5 * time.Second
	return o
}

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s *versitygw.Server, key string, data []byte) string {
	t.Helper()
	etag, err := s.PutObject(context.Background(), testBucket, key, data)
	if err != nil {
		t.Fatal(err)
	}
	return etag
}

func mustOpen(t *testing.T, rawURL string, opt Options) *remote.File {
	t.Helper()
	f, err := Open(context.Background(), rawURL, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readCheck reads n bytes at off and compares them with want's.
func readCheck(t *testing.T, f *remote.File, want []byte, off int64, n int) {
	t.Helper()
	got := make([]byte, n)
	if _, err := f.ReadAt(got, off); err != nil {
		t.Fatalf("ReadAt(%d bytes at %d): %v", n, off, err)
	}
	if !bytes.Equal(got, want[off:off+int64(n)]) {
		t.Fatalf("ReadAt(%d bytes at %d): the bytes differ from the object's", n, off)
	}
}

// logBuffer collects a zerolog logger's output, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() zerolog.Logger { return zerolog.New(l).Level(zerolog.DebugLevel) }
