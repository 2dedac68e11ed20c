package nbd

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestListenTCP(t *testing.T) {
	cases := []struct {
		addr                  string
		tlsRequired, insecure bool
		insecureErr           bool
	}{
		{addr: "tcp:127.0.0.1:0"},
		{addr: "tcp:localhost:0"},
		{addr: "tcp::0", insecureErr: true},
		{addr: "tcp:0.0.0.0:0", insecureErr: true},
		{addr: "tcp:0.0.0.0:0", insecure: true},
		{addr: "tcp:0.0.0.0:0", tlsRequired: true},
	}
	for _, c := range cases {
		l, err := Listen(c.addr, c.tlsRequired, c.insecure)
		if c.insecureErr {
			if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "--insecure") {
				t.Errorf("Listen(%q, %v, %v): %v, want ErrInsecure naming --insecure", c.addr, c.tlsRequired, c.insecure, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Listen(%q, %v, %v): %v", c.addr, c.tlsRequired, c.insecure, err)
			continue
		}
		l.Close()
	}
	for _, bad := range []string{"", "foo", "udp:1.2.3.4:5", "tcp:nohostport", "unix:"} {
		if l, err := Listen(bad, false, false); err == nil {
			l.Close()
			t.Errorf("Listen(%q) accepted", bad)
		}
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	l, err := Listen("unix:"+path, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := Listen("unix:"+path, false, false); err == nil || !strings.Contains(err.Error(), "another server") {
		if l2 != nil {
			l2.Close()
		}
		t.Errorf("second listener on a live socket: %v", err)
	}
	// A socket left behind by a server that is gone is replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	l, err = Listen("unix:"+path, false, false)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l.Close()
	// Any other file is left alone.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o600)
	if l, err := Listen("unix:"+file, false, false); err == nil {
		l.Close()
		t.Error("listened over a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("a regular file was replaced")
	}
}

func TestServeAfterClose(t *testing.T) {
	s := NewServer(nil, Options{Log: zerolog.Nop()})
	s.Close()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
	s = NewServer(nil, Options{RequireTLS: true})
	l, _ = net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err := s.Serve(l); err == nil || errors.Is(err, ErrServerClosed) {
		t.Errorf("RequireTLS without TLS: %v", err)
	}
}

// TestServeTCP: a loopback TCP listener serves nbdcopy.
func TestServeTCP(t *testing.T) {
	l, err := Listen("tcp:127.0.0.1:0", false, false)
	if err != nil {
		t.Fatal(err)
	}
	m := newMem(1<<20, 15)
	s := NewServer(map[string]Export{"disk": m}, Options{Log: zerolog.New(zerolog.NewTestWriter(t))})
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	defer func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	out := filepath.Join(t.TempDir(), "out.raw")
	run(t, "nbdcopy", "nbd://"+l.Addr().String()+"/disk", out)
	checkFile(t, out, m.bytes())
}
