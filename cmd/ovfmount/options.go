package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// mountConfig is everything the mount command was asked to do.
type mountConfig struct {
	archive, mountpoint string
	// archives are all the sources named; archive is the first. Several
	// make a library: one folder per archive.
	archives []string

	foreground  bool
	showVersion bool // -V, --version: print the version, mount nothing
	notifyFD    int  // set in the background child: where to report readiness

	allowOther, defaultPermissions, nonempty bool
	uid, gid                                 int // -1: the mounting user
	fsname                                   string
	kernelOptions                            []string

	logLevel, logFormat, logFile string
	debugFUSE                    bool

	cacheSize int64  // bytes of decoded disk data kept in memory
	directIO  bool   // bypass the kernel's page cache for file reads
	overlay   string // folder of the copy-on-write overlay that makes the views writable ("": read-only)
	auditLog  string // file the read audit log is appended to ("": none)

	cpuProfile string // hidden: write a CPU profile of the mount's life here

	verify
}

// verify holds the integrity options, shared by the mount and verify
// commands.
type verify struct {
	mode                 string
	cacheDir             string
	caFile               string
	ca                   *caBundle // caFile, parsed once: see cas
	requireTrustedSigner bool
	allowUnlisted        bool
	descriptor           string
	diskChain            string
	net                  remoteFlags
	s3                   s3Flags
}

// flags adds the flags that decide what the package is and how it is
// checked, the same for every command, so that the mount, info and verify
// see the same package; mount adds the mount's own.
func (v *verify) flags(fs *pflag.FlagSet, mount bool) {
	if mount {
		fs.StringVar(&v.mode, "verify", "lazy", "check files against the manifest: off, lazy (serve at once, verify in the background, then check every read) or strict (serve nothing unverified)")
		fs.BoolVar(&v.allowUnlisted, "allow-unlisted", false, "with --verify=strict, also serve files the manifest does not list")
	}
	fs.StringVar(&v.descriptor, "descriptor", "", "in an OVA holding several descriptors, the one to use (default: the first member whose name ends in .ovf)")
	fs.StringVar(&v.diskChain, "disk-chain", "on", "on: a child disk (a VMDK delta, a QCOW2 overlay, a VHD, VHDX or VDI differencing disk) reads through its parents, found among the package's own files, and its view is the whole chain; off: a child gets no view")
	fs.StringVar(&v.cacheDir, "cache-dir", defaultCacheDir(), "where trusted chunk tables, seek indexes (gzip files, compressed archives and their tar indexes, zip entries) and blocks of remote archives are kept between runs (empty: nowhere)")
	fs.StringVar(&v.caFile, "ca", "", caHelp)
	fs.BoolVar(&v.requireTrustedSigner, "require-trusted-signer", false, "count only a signature by a trusted signer: an untrusted, self-signed or expired signer is a bad signature, and an unsigned package fails verify (and, with --verify=strict, every file its manifest lists)")
	v.net.flags(fs)
	v.s3.flags(fs)
}

const caHelp = "PEM file of extra trusted CA certificates, alongside the system roots: for the signer's chain, and for an https URL's server"

// defaultCacheDir is $XDG_CACHE_HOME/ovfmount, or ~/.cache/ovfmount.
func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ovfmount")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "ovfmount")
	}
	return ""
}

// mountFlags builds the flag set of the mount command. pflag parses flags
// anywhere on the line, which mount(8) needs: it passes -o after the
// positional arguments.
func mountFlags(cfg *mountConfig) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ovfmount", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.BoolVarP(&cfg.foreground, "foreground", "f", false, "stay in the foreground and log to stderr; the mount lasts until SIGINT/SIGTERM or fusermount3 -u")
	fs.StringSliceP("options", "o", nil, "mount options, comma-separated, as mount(8) passes them (see Mount options below)")
	fs.Func("cache-size", "memory for decoded disk data shared by all raw views, e.g. 64M, 1G (default 64M)", func(v string) error {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		cfg.cacheSize = n
		return nil
	})
	fs.BoolVar(&cfg.directIO, "direct-io", false, "bypass the kernel's page cache for file reads: large sequential reads (qemu-img convert, dd bs=1M, cp) get faster; small reads (a round trip each) and rereads get slower")
	fs.StringVar(&cfg.overlay, "overlay", "", "make the disks' raw views, partitions and logical volumes writable, keeping the guest's writes in this folder (created if missing; bound to this archive); the archive is never written")
	fs.StringVar(&cfg.auditLog, "audit-log", "", "append a line to this file for every open and every range of a file read through the mount, each with the SHA-256 of the line before (a hash chain; check it with 'ovfmount audit verify'); the mount refuses to start if it cannot be written, and a later write error fails reads with EIO")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "auto", "log format: auto (console on a terminal, JSON otherwise), console or json")
	fs.StringVar(&cfg.logFile, "log-file", "", "file a background mount appends its log to (default: syslog, or nowhere if syslog is absent)")
	fs.BoolVar(&cfg.debugFUSE, "debug-fuse", false, "log every FUSE request and reply (very verbose; implies --log-level=debug)")
	cfg.verify.flags(fs, true)
	// A flag, not only the version command, so that it is listed with the
	// others in --help and works wherever it is on the line, as -V does in
	// sshfs and mount.fuse3.
	fs.BoolVarP(&cfg.showVersion, "version", "V", false, "print the version and exit")
	fs.IntVar(&cfg.notifyFD, "notify-fd", 0, "")
	fs.MarkHidden("notify-fd")
	fs.StringVar(&cfg.cpuProfile, "cpu-profile", "", "write a CPU profile of the whole mount to this file, and a heap profile at its end to FILE.heap (for developers)")
	fs.MarkHidden("cpu-profile")
	return fs
}

const mountOptionsHelp = `Mount options (-o), also usable in fstab:
  allow_other            let other users use the mount (non-root mounters need
                         user_allow_other in /etc/fuse.conf)
  default_permissions    let the kernel enforce file modes
  uid=N, gid=N           owner shown for every file (default: the mounting user)
  fsname=NAME            name shown in df and /proc/mounts (default: the archive path)
  nonempty               allow mounting over a non-empty folder
  noexec                 forbid executing files from the mount
  log_file=PATH          same as --log-file
  log_level=LEVEL        same as --log-level
  log_format=FORMAT      same as --log-format
  cache_size=SIZE        same as --cache-size
  direct_io              same as --direct-io
  overlay=DIR            same as --overlay
  audit_log=FILE         same as --audit-log
  verify=MODE, cache_dir=DIR, ca=FILE, require_trusted_signer, allow_unlisted,
  descriptor=NAME, disk_chain=on|off, netrc=FILE, remote_cache=SIZE,
  timeout=DURATION, connections=N, s3_endpoint=URL, s3_region=REGION,
  s3_profile=NAME, s3_addressing=MODE
                         same as the flags of those names
  ro, rw, dev, nodev, suid, nosuid, exec, atime, noatime, relatime, defaults,
  auto, noauto, user, users, nofail, _netdev, x-*
                         accepted for mount(8) and fstab; the mount is always
                         nosuid and nodev, and read-only unless overlay= is given
`

// applyOption applies one -o option. Options the kernel would reject are
// refused here with a clear message instead of an EINVAL from mount(2).
func (cfg *mountConfig) applyOption(opt string) error {
	key, val, hasVal := strings.Cut(opt, "=")
	num := func() (int, error) {
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || !hasVal {
			return 0, fmt.Errorf("mount option %q needs a non-negative number", opt)
		}
		return n, nil
	}
	var err error
	switch key {
	case "allow_other":
		cfg.allowOther = true
	case "default_permissions":
		cfg.defaultPermissions = true
	case "nonempty":
		cfg.nonempty = true
	case "uid":
		cfg.uid, err = num()
	case "gid":
		cfg.gid, err = num()
	case "fsname":
		cfg.fsname = val
	case "noexec":
		cfg.kernelOptions = append(cfg.kernelOptions, "noexec")
	case "log_file":
		cfg.logFile = val
	case "log_level":
		cfg.logLevel = val
	case "log_format":
		cfg.logFormat = val
	case "cache_size":
		cfg.cacheSize, err = parseSize(val)
	case "direct_io":
		cfg.directIO = true
	case "overlay":
		if val == "" {
			return fmt.Errorf("mount option %q needs a folder", opt)
		}
		cfg.overlay = val
	case "audit_log":
		if val == "" {
			return fmt.Errorf("mount option %q needs a file", opt)
		}
		cfg.auditLog = val
	case "verify":
		cfg.mode = val
	case "cache_dir":
		cfg.cacheDir = val
	case "ca":
		cfg.caFile = val
	case "require_trusted_signer":
		cfg.requireTrustedSigner = true
	case "allow_unlisted":
		cfg.allowUnlisted = true
	case "descriptor":
		cfg.descriptor = val
	case "disk_chain":
		cfg.diskChain = val
	case "netrc":
		cfg.net.netrc = val
	case "remote_cache":
		cfg.net.cacheSize, err = parseSize(val)
	case "timeout":
		cfg.net.timeout, err = time.ParseDuration(val)
	case "connections":
		err = cfg.net.setConnections(val)
	case "s3_endpoint":
		cfg.s3.endpoint = val
	case "s3_region":
		cfg.s3.region = val
	case "s3_profile":
		cfg.s3.profile = val
	case "s3_addressing":
		cfg.s3.addressing = val
	case "ro", "rw", "dev", "nodev", "suid", "nosuid", "exec", "atime", "noatime", "relatime", "strictatime",
		"nodiratime", "diratime", "defaults", "auto", "noauto", "user", "users", "owner", "group", "nofail",
		"_netdev", "comment", "subtype", "max_read", "kernel_cache", "auto_cache":
		// Meaningless for a read-only archive view, or handled by mount(8).
	default:
		if strings.HasPrefix(key, "x-") {
			return nil // fstab annotations for systemd and friends
		}
		return fmt.Errorf("unknown mount option %q (see ovfmount --help)", opt)
	}
	return err
}

// parseMountArgs parses the mount command line.
func parseMountArgs(args []string) (*mountConfig, *pflag.FlagSet, error) {
	cfg := &mountConfig{uid: -1, gid: -1}
	fs := mountFlags(cfg)
	if err := fs.Parse(args); err != nil {
		return nil, fs, err
	}
	if cfg.showVersion {
		return cfg, fs, nil // nothing else on the line matters
	}
	opts, _ := fs.GetStringSlice("options")
	for _, o := range opts {
		if o == "" {
			continue
		}
		if err := cfg.applyOption(o); err != nil {
			return nil, fs, err
		}
	}
	if fs.NArg() < 2 {
		return nil, fs, fmt.Errorf("need ARCHIVE and MOUNTPOINT (several ARCHIVEs make a library), got %d argument(s)", fs.NArg())
	}
	named := fs.Args()
	cfg.archives, cfg.mountpoint = named[:len(named)-1], named[len(named)-1]
	cfg.archive = cfg.archives[0]
	if cfg.debugFUSE {
		cfg.logLevel = "debug"
	}
	return cfg, fs, nil
}

// parseSize reads a byte count with an optional binary suffix: K, M, G or
// T (KiB, MiB, GiB, TiB), with or without a trailing "B" or "iB".
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift > 0 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("invalid size %q (use a number of bytes, or K, M, G or T)", s)
	}
	return n << shift, nil
}
