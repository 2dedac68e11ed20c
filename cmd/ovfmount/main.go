// Command ovfmount mounts an OVA appliance, or an unpacked OVF package,
// read-only, so that its descriptor, manifest, certificate and disks appear
// as files without extracting anything.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command line, returning the exit code, so that tests
// can drive it.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, versionString())
			return exitOK
		case "-h", "--help":
			usage(stdout)
			return exitOK
		case "help":
			return runHelp(args[1:], stdout, stderr)
		case "verify":
			return runVerify(args[1:], stdout, stderr)
		case "info":
			return runInfo(args[1:], stdout, stderr)
		case "serve":
			return runServe(args[1:], stdout, stderr)
		case "overlay":
			return runOverlay(args[1:], stdout, stderr)
		case "map":
			return runMap(args[1:], stdout, stderr)
		case "check":
			return runCheck(args[1:], stdout, stderr)
		case "audit":
			return runAudit(args[1:], stdout, stderr)
		}
		if err := mistypedCommand(args[0]); err != nil {
			fmt.Fprintf(stderr, "ovfmount: %v\nRun 'ovfmount --help' for usage.\n", err)
			return exitUsage
		}
	}
	cfg, _, err := parseMountArgs(args)
	if errors.Is(err, pflag.ErrHelp) {
		usage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount: %v\nRun 'ovfmount --help' for usage.\n", err)
		return exitUsage
	}
	if cfg.showVersion {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	if !cfg.foreground {
		return daemonize(args, stderr)
	}
	err = serve(cfg)
	if err != nil {
		if cfg.notifyFD > 0 {
			notify(cfg.notifyFD, err) // the waiting parent prints it
		} else {
			fmt.Fprintf(stderr, "ovfmount: %v\n", err)
		}
	}
	return codeOf(err)
}

// runHelp answers "help [COMMAND]". The subcommands build their flag sets
// inside their run functions, so their help is theirs to print: "help info"
// is "info --help". The mount command's help is the top-level one.
func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 {
		fmt.Fprintf(stderr, "ovfmount: help takes one COMMAND at most, got %d\nRun 'ovfmount --help' for usage.\n", len(args))
		return exitUsage
	}
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	switch args[0] {
	case "info", "verify", "serve", "overlay", "map", "check", "audit":
		return run([]string{args[0], "--help"}, stdout, stderr)
	case "mount", "version", "help":
		usage(stdout)
		return exitOK
	}
	msg := fmt.Sprintf("no command %q", args[0])
	if c := closestCommand(args[0]); c != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", c)
	}
	fmt.Fprintf(stderr, "ovfmount: help: %s; the commands are mount, info, verify, check, serve, overlay, map, audit, version and help\nRun 'ovfmount --help' for usage.\n", msg)
	return exitUsage
}

func usage(w io.Writer) {
	var cfg mountConfig
	flags := mountFlags(&cfg).FlagUsages()
	fmt.Fprintf(w, `ovfmount mounts an OVA appliance read-only: its descriptor, manifest,
certificate and disks appear as files, read in place, without extracting.

Usage:
  ovfmount [flags] ARCHIVE MOUNTPOINT   mount (returns once the mount is ready)
  ovfmount [flags] ARCHIVE... MOUNTPOINT
                                        mount a library: one folder per archive, each opened
                                        when first looked into
  ovfmount info [flags] ARCHIVE...      summarise the appliance: systems, disks, networks, signature
  ovfmount verify [flags] ARCHIVE...    check every file against the manifest and signature
  ovfmount check [flags] ARCHIVE...     will vSphere, VirtualBox, virt-v2v, Proxmox, oVirt import it?
  ovfmount serve --nbd ADDR ARCHIVE     serve the disks, partitions and volumes over NBD
  ovfmount overlay status|export ...    what an --overlay folder holds; a disk as the guest left it
  ovfmount map [--json] ARCHIVE DISK    where each byte of a disk's view comes from (which layer of
                                        its snapshot chain, which file, which offset)
  ovfmount audit verify [--json] FILE   check a read audit log's hash chain (--audit-log), print what was read
  ovfmount version                      print the version (also -V, --version)
  ovfmount help [COMMAND]               print this help, or that of info, verify, check, serve, overlay, map or audit

ARCHIVE is an .ova file (a tar archive, also compressed whole with gzip),
an http:// or https:// URL of one (read in place with range requests:
nothing is downloaded but what is read), or the .ovf descriptor of an
unpacked package (or its folder). Archives are recognised by their bytes,
never by their names.

Several ARCHIVEs, or a folder of archives (a folder without an .ovf), make
a library: one folder per archive, named after it without its extension
(.ova, .ova.gz...; clashing names get a ~suffix from the source). The
mount is ready once they are listed; each archive is opened the first time
its folder is looked into, and one that cannot be read fails its folder
only (see its user.ovfmount.state and user.ovfmount.error attributes).
MOUNTPOINT must be an empty folder.
Unmount with: fusermount3 -u MOUNTPOINT (or umount as root).

Flags:
%s
%s
Also works as a mount helper:
  mount -t fuse.ovfmount /srv/appliance.ova /mnt/app -o allow_other
  fstab: /srv/appliance.ova /mnt/app fuse.ovfmount ro,allow_other,nofail 0 0

%s`, strings.TrimRight(flags, "\n"), "\n"+mountOptionsHelp, exitCodeHelp)
}
