// Package versitygw runs a real S3 server, Versity Gateway, on loopback
// with a posix backend in a temporary folder, for the tests and benchmarks
// of reading OVAs from S3. A real server matters: its SigV4 checks, its
// conditional and range GETs and its XML errors are what users meet, not
// what a test double was written to do.
//
// The binary is built once by `make versitygw` into a cache folder; tests
// skip without it, unless OVFMOUNT_REQUIRE_TOOLS=1 makes them fail.
package versitygw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the Versity Gateway release the Makefile builds.
const Version = "v1.8.0"

// ErrMissing means the versitygw binary was not found.
var ErrMissing = errors.New("versitygw is not built (make versitygw builds it into ~/.cache/ovfmount-tools, or set OVFMOUNT_VERSITYGW)")

// Binary finds versitygw: OVFMOUNT_VERSITYGW, else the Makefile's cache
// path under the home folder.
func Binary() (string, error) {
	if p := os.Getenv("OVFMOUNT_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: OVFMOUNT_VERSITYGW: %w", ErrMissing, err)
		}
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMissing, err)
	}
	p := filepath.Join(home, ".cache", "ovfmount-tools", "versitygw-"+Version, "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: no %s", ErrMissing, p)
	}
	return p, nil
}

// Server is a running Versity Gateway.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Access   string // the root user's access key
	Secret   string // and its secret
	Region   string
	// Client is an SDK client for the server, with the root user's
	// credentials and path-style addressing.
	Client *s3.Client

	dir      string
	cmd      *exec.Cmd
	exited   chan error
	stopOnce sync.Once
}

// StartProcess runs versitygw with its objects and log in dir, and
// returns once it answers S3 requests. Stop ends it.
func StartProcess(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port),
		Access:   "ovfmounttestaccess",
		Secret:   "ovfmount-test-secret-9f2c",
		Region:   "us-east-1",
		dir:      dir,
	}
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// The posix backend keeps object metadata (the ETag among it) in
	// extended attributes; a sidecar folder works where the temporary
	// folder's filesystem has none.
	s.cmd = exec.Command(bin, "--access", s.Access, "--secret", s.Secret, "--region", s.Region,
		"--port", fmt.Sprintf("127.0.0.1:%d", port), "--keep-alive", "--quiet",
		"posix", "--sidecar", filepath.Join(dir, "meta"), data)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID=", "ROOT_SECRET_ACCESS_KEY=", "ROOT_ACCESS_KEY=", "ROOT_SECRET_KEY=")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o755); err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	s.Client = s.NewClient(s.Access, s.Secret)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("versitygw exited at start (%v): %s", err, s.log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.Client.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("versitygw did not answer within 20 s (%v): %s", err, s.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Start runs versitygw for a test, in a folder of t.TempDir(), and stops
// it when the test ends. Without the binary the test is skipped, or fails
// when OVFMOUNT_REQUIRE_TOOLS=1.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatalf("OVFMOUNT_REQUIRE_TOOLS=1: %v", err)
		}
		t.Skipf("skipping the S3 test: %v", err)
	}
	s, err := StartProcess(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// NewClient is an SDK client for the server with the given credentials:
// path-style, no retries (a test sees every failure), and checksums only
// where S3 requires them.
func (s *Server) NewClient(access, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(access, secret, ""),
		RetryMaxAttempts:           1,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates a bucket.
func (s *Server) CreateBucket(ctx context.Context, bucket string) error {
	_, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	if err != nil {
		return fmt.Errorf("versitygw: creating bucket %s: %w", bucket, err)
	}
	return nil
}

// PutObject stores data under bucket/key and returns its ETag.
func (s *Server) PutObject(ctx context.Context, bucket, key string, data []byte) (string, error) {
	out, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return "", fmt.Errorf("versitygw: putting %s/%s: %w", bucket, key, err)
	}
	return aws.ToString(out.ETag), nil
}

// PutFile stores the file at path under bucket/key, streamed from disk
// (the bench puts a 1.2 GB archive), and returns its ETag.
func (s *Server) PutFile(ctx context.Context, bucket, key, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	out, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          f,
		ContentLength: aws.Int64(st.Size()),
	})
	if err != nil {
		return "", fmt.Errorf("versitygw: putting %s/%s from %s: %w", bucket, key, path, err)
	}
	return aws.ToString(out.ETag), nil
}

// Stop ends versitygw and waits for it to exit. It may be called more
// than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd.Process != nil {
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// Env is an environment in which the AWS SDK and CLI (ovfmount run as a
// command among them) reach this server as the root user, and nothing of
// the host's AWS setup: its credentials, region and endpoint, empty shared
// config and credentials files, and no instance metadata service (which
// lives at an address a test must never reach). Append it to os.Environ()
// less its AWS_ variables.
func (s *Server) Env() []string {
	empty := filepath.Join(s.dir, "empty-aws-file")
	os.WriteFile(empty, nil, 0o600)
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.Access,
		"AWS_SECRET_ACCESS_KEY=" + s.Secret,
		"AWS_REGION=" + s.Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_CONFIG_FILE=" + empty,
		"AWS_SHARED_CREDENTIALS_FILE=" + empty,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "versitygw.log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return strings.TrimSpace(string(b))
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before versitygw binds it; Start would then fail clearly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
