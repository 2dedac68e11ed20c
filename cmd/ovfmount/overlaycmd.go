package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/overlay"
)

const overlayUsage = `Usage:
  ovfmount overlay status [--json] DIR
  ovfmount overlay export [flags] DIR DISK OUT

An overlay folder (made by --overlay DIR on a mount or on serve --nbd) holds
the guest's writes to an appliance's disks; the archive is never written.

status says which archive the folder belongs to and, for each disk, how
much the guest wrote and when it last synced. It reads the folder alone,
also while it is mounted.

export writes DISK (disk1.vmdk, or its view's name disk1.vmdk.raw) as the
guest left it, the archive's bytes with the overlay's on top, to OUT as a
standalone image that qemu-img and hypervisors take: qcow2 when OUT ends in
.qcow2, raw otherwise (sparse), or as --format says. It opens the archive
the folder records (or --archive), and refuses one that is not the archive
the folder was made for, or that changed since. The folder must not be in
use by a mount.

Exit codes: 0 done; 1 the export failed (a read, a check or a write);
2 usage, or a folder or archive that does not match.

Flags:
%s`

func runOverlay(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		if len(args) == 0 {
			fmt.Fprintf(stderr, "ovfmount overlay: need status or export\nRun 'ovfmount overlay --help' for usage.\n")
			return exitUsage
		}
		fmt.Fprintf(stdout, overlayUsage, overlayFlags(new(overlayConfig)).FlagUsages())
		return exitOK
	}
	cfg := &overlayConfig{}
	fl := overlayFlags(cfg)
	err := fl.Parse(args[1:])
	if err == pflag.ErrHelp {
		fmt.Fprintf(stdout, overlayUsage, fl.FlagUsages())
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount overlay: %v\nRun 'ovfmount overlay --help' for usage.\n", err)
		return exitUsage
	}
	switch args[0] {
	case "status":
		if fl.NArg() != 1 {
			fmt.Fprintf(stderr, "ovfmount overlay status: need one DIR, got %d argument(s)\n", fl.NArg())
			return exitUsage
		}
		err = overlayStatus(fl.Arg(0), cfg.json, stdout)
	case "export":
		if fl.NArg() != 3 {
			fmt.Fprintf(stderr, "ovfmount overlay export: need DIR DISK OUT, got %d argument(s)\n", fl.NArg())
			return exitUsage
		}
		err = overlayExport(cfg, fl.Arg(0), fl.Arg(1), fl.Arg(2), stdout)
	default:
		fmt.Fprintf(stderr, "ovfmount overlay: no command %q: want status or export\n", args[0])
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount overlay %s: %v\n", args[0], err)
	}
	return codeOf(err)
}

type overlayConfig struct {
	json    bool
	format  string
	archive string
	verify
}

func overlayFlags(cfg *overlayConfig) *pflag.FlagSet {
	fl := pflag.NewFlagSet("ovfmount overlay", pflag.ContinueOnError)
	fl.SortFlags = false
	fl.SetOutput(io.Discard)
	fl.BoolVar(&cfg.json, "json", false, "status: print the status as JSON")
	fl.StringVar(&cfg.format, "format", "", "export: raw or qcow2 (default: qcow2 when OUT ends in .qcow2, else raw)")
	fl.StringVar(&cfg.archive, "archive", "", "export: the archive (default: the path the folder recorded)")
	cfg.verify.flags(fl, true)
	return fl
}

func overlayStatus(dir string, asJSON bool, stdout io.Writer) error {
	st, err := overlay.ReadStatus(dir)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(stdout, "overlay  %s\narchive  %s\n", st.Dir, st.Describe)
	if st.Name != "" {
		fmt.Fprintf(stdout, "path     %s\n", st.Name)
	}
	fmt.Fprintf(stdout, "created  %s\n\n", st.Created.Format(time.RFC3339))
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DISK\tSIZE\tWRITTEN\tDATA BLOCKS\tZEROED BLOCKS\tLAST SYNC")
	for _, d := range st.Disks {
		last := "never"
		if !d.LastSync.IsZero() {
			last = d.LastSync.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", d.Name, d.Size, d.Written, d.DataBlocks, d.ZeroBlocks, last)
	}
	return tw.Flush()
}

func overlayExport(cfg *overlayConfig, dir, disk, out string, stdout io.Writer) error {
	format := cfg.format
	if format == "" {
		format = "raw"
		if strings.HasSuffix(strings.ToLower(out), ".qcow2") {
			format = "qcow2"
		}
	}
	if format != "raw" && format != "qcow2" {
		return fail(exitUsage, "--format %q: want raw or qcow2", format)
	}
	st, err := overlay.ReadStatus(dir)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	archive := cfg.archive
	if archive == "" {
		if archive = st.Name; archive == "" {
			return fail(exitUsage, "%s does not record its archive's path: give --archive", dir)
		}
	}
	mode, err := verifyMode(cfg.mode)
	if err != nil {
		return err
	}
	pkg, rf, err := openPackage(archive, &cfg.verify, openWith{mode: mode, useTables: true, log: warnLogger(os.Stderr)})
	if err != nil {
		return err
	}
	defer pkg.Close()
	if rf != nil {
		defer rf.Close()
	}
	store, err := openOverlay(dir, pkg)
	if err != nil {
		return err
	}
	defer store.Close()
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if err := pkg.ExportView(context.Background(), disk, f, format); err != nil {
		f.Close()
		os.Remove(out)
		if errors.Is(err, appliance.ErrNoView) {
			return fail(exitUsage, "%v", err)
		}
		return fail(exitVerify, "%v", err)
	}
	if err := f.Close(); err != nil {
		return fail(exitVerify, "%v", err)
	}
	fmt.Fprintf(stdout, "%s: %s of %s, as left in %s\n", out, format, disk, filepath.Clean(dir))
	return nil
}
