package nbd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// ErrInsecure is returned by Listen for a TCP address that other hosts can
// reach when the server will not require TLS.
var ErrInsecure = errors.New("nbd: plain NBD on a non-loopback address")

// Listen makes a listener from "unix:/path" or "tcp:HOST:PORT".
//
// Plain NBD carries the disks' bytes in the clear and takes no password,
// so a TCP address that is not loopback (and an empty host, which is every
// interface) is refused with ErrInsecure unless tlsRequired (the server
// has Options.TLS and Options.RequireTLS) or insecure (the user said so).
//
// A stale Unix socket at path (one nothing answers on) is replaced; any
// other file there is an error.
func Listen(addr string, tlsRequired, insecure bool) (net.Listener, error) {
	network, rest, ok := strings.Cut(addr, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("nbd: address %q: want unix:/path or tcp:HOST:PORT", addr)
	}
	switch network {
	case "unix":
		return listenUnix(rest)
	case "tcp":
		host, _, err := net.SplitHostPort(rest)
		if err != nil {
			return nil, fmt.Errorf("nbd: address %q: %w", addr, err)
		}
		if !tlsRequired && !insecure {
			if err := checkLoopback(host); err != nil {
				return nil, err
			}
		}
		l, err := net.Listen("tcp", rest)
		if err != nil {
			return nil, fmt.Errorf("nbd: %w", err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("nbd: address %q: network %q is neither unix nor tcp", addr, network)
}

// checkLoopback refuses a host that may be reachable from other machines.
func checkLoopback(host string) error {
	refuse := fmt.Errorf("%w: %q is reachable from other hosts, and anyone who connects can read every export; "+
		"give a TLS certificate and key (with TLS required), or --insecure to serve it anyway", ErrInsecure, host)
	if host == "" {
		return refuse
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return nil
		}
		return refuse
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("nbd: address %q: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return refuse
		}
	}
	return nil
}

// listenUnix listens on path, replacing a socket left by a server that is
// gone.
func listenUnix(path string) (net.Listener, error) {
	l, err := net.Listen("unix", path)
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("nbd: %w", err)
	}
	fi, serr := os.Lstat(path)
	if serr != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("nbd: %w", err)
	}
	if c, derr := net.Dial("unix", path); derr == nil {
		c.Close()
		return nil, fmt.Errorf("nbd: %s: another server is listening there", path)
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("nbd: removing stale socket: %w", err)
	}
	l, err = net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("nbd: %w", err)
	}
	return l, nil
}
