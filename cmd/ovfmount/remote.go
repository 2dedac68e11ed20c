package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/remote"
	"github.com/ovfmount/ovfmount/remote/s3"
)

// remoteFlags configure reading an archive given as an http(s) URL.
type remoteFlags struct {
	headers        []string
	netrc          string
	cacheSize      int64
	timeout        time.Duration
	connections    int // 0: the default of the URL's kind (4 for http, 16 for s3)
	connectionsSet bool
}

func (r *remoteFlags) flags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&r.headers, "header", "H", nil, "for a URL: send this header with every request, e.g. 'Authorization: Bearer TOKEN' (repeatable; never logged)")
	fs.StringVar(&r.netrc, "netrc", "", "for a URL: netrc file with the host's login and password (default $NETRC, else ~/.netrc when it exists)")
	r.cacheSize = remote.DefaultDiskBudget
	fs.Func("remote-cache", "for a URL: disk space for downloaded blocks kept under --cache-dir, so later mounts re-read them without requests, e.g. 4G; 0 keeps none (default 1G)", func(v string) error {
		n, err := parseSize(v)
		r.cacheSize = n
		return err
	})
	fs.DurationVar(&r.timeout, "timeout", remote.DefaultRequestTimeout, "for a URL: give up on a request that makes no progress for this long (it is retried 4 times, then reads fail with EIO)")
	fs.Func("connections", fmt.Sprintf("for a URL: range requests in flight at once, which sequential readers use to fetch ahead in parallel, 1 to %d (default %d for http(s), %d for s3)", remote.MaxConnections, remote.DefaultConnections, s3.DefaultConnections), r.setConnections)
}

func (r *remoteFlags) setConnections(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > remote.MaxConnections {
		return fmt.Errorf("must be a number from 1 to %d", remote.MaxConnections)
	}
	r.connections = n
	return nil
}

// isURL reports whether the archive argument names a file on a web server.
func isURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// shownName is the archive as messages name it: a URL loses its
// credentials and query string (where presigned URLs carry signatures).
func shownName(arg string) string {
	if isURL(arg) {
		return remote.Redact(arg)
	}
	return arg
}

// options turns the flags into remote.Options. Errors carry exit code 2
// and never quote a header's value, which may be a secret.
func (r *remoteFlags) options(ca *caBundle, cacheDir string, log zerolog.Logger) (remote.Options, error) {
	opt := remote.Options{Log: log, Version: version, Header: http.Header{}}
	for i, h := range r.headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return opt, fail(exitUsage, "--header #%d is not of the form 'Name: value'", i+1)
		}
		opt.Header.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
	}
	switch {
	case r.netrc != "":
		opt.NetrcFile = r.netrc
	case os.Getenv("NETRC") != "":
		opt.NetrcFile = os.Getenv("NETRC")
	default:
		if home, err := os.UserHomeDir(); err == nil {
			if p := filepath.Join(home, ".netrc"); fileExists(p) {
				opt.NetrcFile = p
			}
		}
	}
	if cacheDir != "" && r.cacheSize > 0 {
		opt.CacheDir, opt.DiskBudget = filepath.Join(cacheDir, "remote"), r.cacheSize
	}
	if r.timeout <= 0 {
		return opt, fail(exitUsage, "--timeout must be positive, e.g. 30s or 2m")
	}
	opt.RequestTimeout = r.timeout
	opt.Connections = r.connections
	// Worded as package remote worded them when it read the file itself.
	roots, err := ca.roots()
	switch {
	case errors.Is(err, errNoPEM):
		return opt, fail(exitUsage, "CA file %s: no PEM certificates in it", ca.path)
	case err != nil:
		return opt, fail(exitUsage, "CA file: %v", err)
	}
	opt.RootCAs = roots
	return opt, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// openRemote opens an archive on a web server. Errors carry exit code 2
// and say what the user can do about them.
func openRemote(rawURL string, opt remote.Options) (*remote.File, error) {
	// A server that stalls keeps Open retrying for minutes: SIGINT and
	// SIGTERM end the wait.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := remote.Open(ctx, rawURL, opt)
	if err == nil {
		return f, nil
	}
	if ctx.Err() != nil {
		return nil, fail(exitUsage, "%s: interrupted while opening it; nothing was mounted", shownName(rawURL))
	}
	msg := strings.TrimPrefix(err.Error(), "remote: ")
	switch {
	case errors.Is(err, remote.ErrNoRanges):
		msg += "; ovfmount reads archives in place and cannot use it (download the file instead)"
	case errors.Is(err, remote.ErrUnavailable):
		msg += "; try again later, or raise --timeout"
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		msg += " (if the server's certificate comes from a private CA, give that CA with --ca FILE)"
	}
	return nil, fail(exitUsage, "%s", msg)
}
