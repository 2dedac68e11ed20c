package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/nbd"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/vdisk"
)

const serveUsage = `Usage: ovfmount serve --nbd ADDR [flags] ARCHIVE

Serves the disks of an appliance over NBD (the Network Block Device
protocol), without a mount: one export per file of the mount's disks
folder, under the same name (disk1.vmdk.raw for a disk's raw view,
disk1.vmdk.p1 for its first partition, disk1.vmdk.vg0-root for a logical
volume). Every byte is read through the same checks as through the mount.
The exports are read-only, unless --overlay is given: then the raw views,
partitions and logical volumes take writes, trims and zeroes, kept in the overlay folder
as the mount's --overlay keeps them. Exports may be used over several
connections at once. It serves until SIGINT or SIGTERM.

ADDR is unix:PATH (a socket made there; a stale one is replaced) or
tcp:HOST:PORT. Plain NBD has no password and no encryption, so a TCP address
that other hosts can reach needs TLS (--tls-cert and --tls-key, which make
TLS required) or --insecure.

Examples:
  ovfmount serve --nbd unix:/run/app.sock appliance.ova
  nbdinfo --list 'nbd+unix:///?socket=/run/app.sock'
  qemu-img convert -O qcow2 'nbd+unix:///disk1.vmdk.raw?socket=/run/app.sock' disk1.qcow2

Flags:
%s`

// serveConfig is what the serve command was asked to do.
type serveConfig struct {
	mountConfig // the archive, logging, cache and verification flags it shares with the mount

	addr            string
	tlsCert, tlsKey string
	tlsClientCA     string
	insecure        bool
	listening       func(addr string) // tests: told once the server listens
	stop            <-chan struct{}   // tests: stops the server as a signal would
}

func serveFlags(cfg *serveConfig) *pflag.FlagSet {
	fl := pflag.NewFlagSet("ovfmount serve", pflag.ContinueOnError)
	fl.SortFlags = false
	fl.SetOutput(io.Discard)
	fl.StringVar(&cfg.addr, "nbd", "", "where to serve NBD: unix:PATH or tcp:HOST:PORT (required)")
	fl.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM certificate (chain) for TLS; with --tls-key, clients must use TLS")
	fl.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fl.StringVar(&cfg.tlsClientCA, "tls-client-ca", "", "PEM CA certificates: clients must present a certificate signed by one of them (needs --tls-cert)")
	fl.BoolVar(&cfg.insecure, "insecure", false, "serve plain NBD on a TCP address other hosts can reach (anyone who connects can read every export)")
	fl.Func("cache-size", "memory for decoded disk data shared by all exports, e.g. 64M, 1G (default 64M)", func(v string) error {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		cfg.cacheSize = n
		return nil
	})
	fl.StringVar(&cfg.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	fl.StringVar(&cfg.logFormat, "log-format", "auto", "log format: auto (console on a terminal, JSON otherwise), console or json")
	fl.StringVar(&cfg.overlay, "overlay", "", "make the raw views, partitions and logical volumes writable, keeping the writes in this folder (as the mount's --overlay; the same folder can be mounted later)")
	cfg.verify.flags(fl, true)
	return fl
}

func runServe(args []string, stdout, stderr io.Writer) int {
	cfg := &serveConfig{mountConfig: mountConfig{uid: -1, gid: -1}}
	fl := serveFlags(cfg)
	if code, done := parseOneArchive(fl, args, serveUsage, stdout, stderr); done {
		return code
	}
	if cfg.addr == "" {
		fmt.Fprintf(stderr, "ovfmount serve: --nbd ADDR is required (unix:PATH or tcp:HOST:PORT)\nRun 'ovfmount serve --help' for usage.\n")
		return exitUsage
	}
	cfg.archive = fl.Arg(0)
	err := serveNBD(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount serve: %v\n", err)
	}
	return codeOf(err)
}

// serveNBD opens the package and serves its block views until a signal
// (or cfg.stop) ends it.
func serveNBD(cfg *serveConfig) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	log, _, err := newLogger(&cfg.mountConfig)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	tlsConf, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	mode, err := verifyMode(cfg.mode)
	if err != nil {
		return err
	}
	// Listen first: a bad or busy address is reported at once, not after
	// the disks were read.
	l, err := nbd.Listen(cfg.addr, tlsConf != nil, cfg.insecure)
	if err != nil {
		return fail(exitListen, "%v", err)
	}
	defer func() {
		l.Close()
		if path, ok := strings.CutPrefix(cfg.addr, "unix:"); ok {
			os.Remove(path) // nothing answers on it any more
		}
	}()
	cache := vdisk.NewCache(cfg.cacheSize, 0)
	defer cache.Close()
	pkg, rf, err := openInterruptibly(&cfg.mountConfig, openWith{mode: mode, useTables: true, buildGzip: true, cache: cache,
		onEvent: func(e integrity.Event) { logEvent(log, e) }, log: log, logInside: true}, sigs)
	if err != nil {
		return err
	}
	defer pkg.Close()
	if rf != nil {
		defer rf.Close()
	}
	logPackage(log, pkg)
	closeOverlay, err := withOverlay(cfg.overlay, pkg, log)
	if err != nil {
		return err
	}
	defer closeOverlay()
	views, err := pkg.BlockViews(context.Background())
	if err != nil {
		return fail(exitUsage, "%s: reading the disks' partition tables and volumes: %v", pkg.Name, err)
	}
	if len(views) == 0 {
		return fail(exitUsage, "%s: no disk has a raw view to serve (ovfmount info says why)", pkg.Name)
	}
	exports := make(map[string]nbd.Export, len(views))
	names := make([]string, 0, len(views))
	for _, v := range views {
		e := &nbdExport{c: v.Content, role: v.Role}
		if w, ok := v.Content.(appliance.Writable); ok {
			exports[v.Name] = &nbdWritable{nbdExport: e, w: w}
		} else {
			exports[v.Name] = e
		}
		names = append(names, v.Name)
	}
	srv := nbd.NewServer(exports, nbd.Options{TLS: tlsConf, RequireTLS: tlsConf != nil, Log: log})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	log.Info().Str("archive", pkg.Name).Str("address", cfg.addr).Bool("tls", tlsConf != nil).
		Strs("exports", names).Msg("serving NBD")
	if cfg.listening != nil {
		cfg.listening(l.Addr().String())
	}
	select {
	case s := <-sigs:
		log.Info().Str("signal", s.String()).Msg("stopping")
	case <-cfg.stop:
	case err := <-done:
		return fail(exitListen, "serving %s: %v", cfg.addr, err)
	}
	srv.Close()
	if err := <-done; err != nil && !errors.Is(err, nbd.ErrServerClosed) {
		log.Warn().Err(err).Msg("the listener ended with an error")
	}
	return nil
}

// tlsConfig loads the certificate, key and client CAs the flags name: nil
// when TLS is not asked for.
func (cfg *serveConfig) tlsConfig() (*tls.Config, error) {
	if cfg.tlsCert == "" && cfg.tlsKey == "" {
		if cfg.tlsClientCA != "" {
			return nil, fail(exitUsage, "--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if cfg.tlsCert == "" || cfg.tlsKey == "" {
		return nil, fail(exitUsage, "--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, fail(exitUsage, "--tls-cert/--tls-key: %v", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.tlsClientCA != "" {
		pem, err := os.ReadFile(cfg.tlsClientCA)
		if err != nil {
			return nil, fail(exitUsage, "--tls-client-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fail(exitUsage, "--tls-client-ca: %s holds no PEM certificate", cfg.tlsClientCA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// nbdExport serves one block view: reads go through the view's checks, as
// reads of the mount do, and its allocation map answers block status.
type nbdExport struct {
	c      appliance.Content
	role   appliance.Role
	opened sync.Once
}

func (e *nbdExport) Size() int64 { return e.c.Size() }

func (e *nbdExport) Description() string {
	return fmt.Sprintf("ovfmount %s", e.role)
}

func (e *nbdExport) ReadAt(ctx context.Context, p []byte, off int64) error {
	e.opened.Do(e.c.Opened) // lazy verification starts at the first read, as on the mount
	return appliance.ReadFull(ctx, e.c, p, off)
}

// Extents is the view's allocation map over the range. Holes read as
// zeros: base:allocation calls them hole and zero.
func (e *nbdExport) Extents(ctx context.Context, off, length int64, fn func(length int64, hole, zero bool) bool) error {
	err := appliance.Extents(e.c, off, off+length, func(n int64, data bool) bool {
		return ctx.Err() == nil && fn(n, !data, !data)
	})
	if err == nil {
		err = ctx.Err() // a walk cut short by the client's hang-up
	}
	return err
}

// nbdWritable is a block view that takes writes (one with an overlay).
// Flush syncs the disk's overlay, which holds every connection's writes:
// the exports are offered with multi-connection.
type nbdWritable struct {
	*nbdExport
	w appliance.Writable
}

func (e *nbdWritable) WriteAt(ctx context.Context, p []byte, off int64) error {
	return e.w.WriteAt(ctx, p, off)
}

func (e *nbdWritable) Flush(ctx context.Context) error { return e.w.Sync() }

func (e *nbdWritable) Trim(ctx context.Context, off, length int64) error {
	return e.w.Discard(ctx, off, length)
}

func (e *nbdWritable) WriteZeroes(ctx context.Context, off, length int64, mayTrim bool) error {
	return e.w.WriteZeroes(ctx, off, length)
}
