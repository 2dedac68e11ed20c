// Package nginx runs a real nginx on loopback, serving a folder over HTTP
// and HTTPS, for the tests and benchmarks of mounting an OVA from a URL.
// A real server matters: its Range, If-Range and keep-alive handling is
// what users meet, not what a test double was written to do.
//
// The server's configuration is nginx.conf.tmpl, kept next to this file.
// Its HTTPS certificate is made for 127.0.0.1 by a CA made on the spot,
// whose certificate is CAFile: clients trust it only when told to.
package nginx

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

//go:embed nginx.conf.tmpl
var confTemplate string

// ErrMissing means no nginx binary is installed.
var ErrMissing = errors.New("nginx is not installed (Debian package nginx)")

// Server is a running nginx.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	TLSURL string // https://127.0.0.1:PORT
	// CAFile is the PEM certificate of the CA that signed the HTTPS
	// certificate.
	CAFile string
	// Token is the bearer token that /private/ asks for.
	Token string
	// AccessLog has one line per request: method, path, Range, status
	// and body bytes.
	AccessLog string

	dir    string
	cmd    *exec.Cmd
	exited chan error
}

// Binary finds nginx on PATH or in /usr/sbin, which a non-root PATH lacks.
func Binary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", ErrMissing
}

// Start runs nginx serving root, with its configuration, logs and
// certificates in dir. It returns once the server answers.
func Start(dir, root string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, AccessLog: filepath.Join(dir, "access.log"), CAFile: filepath.Join(dir, "ca.crt"),
		Token: "ovfmount-test-token"}
	if err := WriteCertificates(dir); err != nil {
		return nil, fmt.Errorf("nginx: certificates: %w", err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	var conf bytes.Buffer
	tmpl := template.Must(template.New("nginx.conf").Parse(confTemplate))
	if err := tmpl.Execute(&conf, map[string]any{"Dir": dir, "Root": root, "Port": ports[0], "TLSPort": ports[1],
		"Token": s.Token}); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	s.TLSURL = fmt.Sprintf("https://127.0.0.1:%d", ports[1])
	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	// -e sends the errors of start-up to the test's folder too, instead
	// of the compiled-in /var/log/nginx, which a non-root user cannot open.
	s.cmd = exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath)
	s.cmd.Stdout, s.cmd.Stderr = stderr, stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("nginx exited at start (%v): %s", err, s.errors())
		default:
		}
		if resp, err := http.Get(s.URL + "/"); err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("nginx did not answer within 10 s: %s", s.errors())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) errors() string {
	var b []byte
	for _, f := range []string{"stderr.log", "error.log"} {
		d, _ := os.ReadFile(filepath.Join(s.dir, f))
		b = append(b, d...)
	}
	return strings.TrimSpace(string(b))
}

// Requests counts the requests served so far.
func (s *Server) Requests() int {
	b, _ := os.ReadFile(s.AccessLog)
	return bytes.Count(b, []byte("\n"))
}

// Log returns the access log's lines from the n-th (counting from 0).
func (s *Server) Log(from int) []string {
	b, _ := os.ReadFile(s.AccessLog)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if from >= len(lines) || len(b) == 0 {
		return nil
	}
	return lines[from:]
}

// Stop ends nginx and waits for it to exit. SIGQUIT would wait for idle
// keep-alive connections; the callers are done with them.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	<-s.exited
}

// freePorts asks the kernel for n unused loopback ports. Another process
// could take one before nginx binds it; on loopback in a test run that
// does not happen in practice, and Start would then fail clearly.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
