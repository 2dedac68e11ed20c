package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// verifyReport is the result of `ovfmount verify`, and its --json schema.
type verifyReport struct {
	OK        bool            `json:"ok"`
	Files     []verifyFile    `json:"files"`
	Signature verifySignature `json:"signature"`
	Warnings  []string        `json:"warnings"`
	// Hashes are the digests --disks computed; absent without it.
	Hashes *hashReport `json:"hashes,omitempty"`
}

type verifyFile struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Expected  string `json:"expected"`
	Actual    string `json:"actual"`
	// Status is ok, mismatch, missing, unlisted, foreign (another package's
	// manifest or certificate), manifest or certificate (the package's
	// own, which the signature covers).
	Status string `json:"status"`
	// Cached says the file was taken as verified from an earlier run's
	// chunk table (--trust-cache), not read here.
	Cached bool `json:"cached,omitempty"`
	// ShownAs are the paths of the mount whose bytes come from this file.
	ShownAs []string `json:"shownAs"`
}

type verifySignature struct {
	Status string `json:"status"` // ok, bad or absent
	Signer string `json:"signer,omitempty"`
	Chain  string `json:"chain,omitempty"` // trusted, untrusted, self-signed or expired
	File   string `json:"file,omitempty"`
	Error  string `json:"error,omitempty"`
}

const verifyUsage = `Usage: ovfmount verify [flags] ARCHIVE...

Reads every byte of every file the package's manifest lists, in parallel,
and prints the digest it computed for each, the manifest's coverage both
ways, and the signature, its chain and whether it binds the descriptor,
then a verdict. A successful run keeps trusted chunk tables, so a
--verify=strict mount of the archive afterwards starts at once.

With --disks it then hashes, with every --hash algorithm in one pass, each
decoded disk (the raw view disks/NAME.raw: the bytes qemu-img convert -O
raw writes) and with --partitions each partition view, disks in parallel,
all read through the same checks as a mount's reads; and the archive file
itself as stored (for a URL or s3://, read once more through the same
pinned reader). The report adds, under "hashes" in JSON: started and time
(RFC 3339, UTC), algorithms, archive {path, size, digests, seconds, error}
(null for an unpacked package), and views [{path, kind (disk or
partition), disk, offset, size, digests, seconds, status, error, from}],
status being verified (decoded from members that matched the manifest),
unverified (no manifest vouches for them) or failed (no digest: error says
why, and the verdict fails). The text report prints one "ALG DIGEST PATH"
line per digest, even with --quiet.

Flags:
%s
Exit codes: 0 everything is good; 1 a digest mismatch, a missing listed file,
a bad signature (with --require-trusted-signer: any package not signed by a
trusted signer), no manifest at all, or (with --disks) a view or the archive
that got no digest; 2 usage error (an unknown --hash algorithm too) or
unreadable archive; 130 interrupted.
`

// exitInterrupted is a verification stopped by SIGINT or SIGTERM, as
// shells report a command killed by SIGINT.
const exitInterrupted = 130

func runVerify(args []string, stdout, stderr io.Writer) int {
	var v verify
	var asJSON, quiet, trustCache bool
	var dh diskHashFlags
	fs := pflag.NewFlagSet("ovfmount verify", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.BoolVarP(&quiet, "quiet", "q", false, "print only the verdict, and when it fails, the files that failed and the warnings (no progress)")
	fs.BoolVar(&trustCache, "trust-cache", false, "take files an earlier run verified (of the same archive: device, inode, size, mtime and ctime) as verified without reading them again; the report marks them cached")
	dh.flags(fs)
	v.flags(fs, false)
	if code, done := parseArchives(fs, args, verifyUsage, stdout, stderr); done {
		return code
	}
	dh.json = asJSON
	if err := dh.parse(); err != nil {
		fmt.Fprintf(stderr, "ovfmount verify: %v\nRun 'ovfmount verify --help' for usage.\n", err)
		return codeOf(err)
	}
	srcs, _, err := expandSources(fs.Args(), &v)
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount verify: %v\n", err)
		return codeOf(err)
	}
	return eachSource(srcs, stdout, stderr, "ovfmount verify", asJSON, func(s source) (any, int, error) {
		report, err := verifyArchive(s.arg, &v, &dh, trustCache, quiet, stderr)
		if err != nil {
			return nil, 0, err
		}
		if !report.OK {
			return report, exitVerify, nil
		}
		return report, exitOK, nil
	}, func(r any) { printReport(stdout, r.(*verifyReport), quiet) })
}

func verifyArchive(path string, v *verify, dh *diskHashFlags, trustCache, quiet bool, stderr io.Writer) (*verifyReport, error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	pkg, rf, err := openPackage(path, v, openWith{mode: integrity.Lazy, useTables: trustCache, ctx: ctx, log: warnLogger(stderr)})
	if err != nil {
		return nil, err
	}
	defer pkg.Close()
	if rf != nil {
		defer rf.Close()
	}
	var done atomic.Int64
	var progress func(int64)
	finish := func() {}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) && !quiet {
		total := pkg.Checks.ListedTotal()
		progress = func(n int64) { done.Add(n) }
		finish = showProgress(f, total, &done)
	}
	err = pkg.Checks.VerifyAll(ctx, progress)
	finish() // the line is cleared before the report, or --disks' own progress
	if err != nil {
		return nil, fail(exitInterrupted, "verification interrupted: nothing was concluded, and no partial chunk table was kept")
	}
	r := buildReport(pkg, v.requireTrustedSigner)
	if dh.disks {
		var remote io.ReaderAt
		var size int64
		if rf != nil {
			remote, size = rf, rf.Size()
		}
		h, err := hashPackage(ctx, path, pkg, remote, size, dh, stderr, quiet)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fail(exitInterrupted, "hashing interrupted: no digest was reported")
			}
			return nil, err
		}
		r.Hashes = h
		r.Warnings = append(r.Warnings, h.notes...)
		if fails := h.failures(); len(fails) > 0 {
			r.OK = false
			r.Warnings = append(r.Warnings, fails...)
		}
	}
	return r, nil
}

// showProgress draws bytes hashed, the share done and the rate on a
// terminal line until the returned function is called.
func showProgress(w io.Writer, total int64, done *atomic.Int64) func() {
	return showProgressAs(w, "verifying", total, done)
}

// showProgressAs is showProgress with what is being done named.
func showProgressAs(w io.Writer, what string, total int64, done *atomic.Int64) func() {
	start := time.Now()
	stop := make(chan struct{})
	finished := make(chan struct{})
	draw := func() {
		n := done.Load()
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(n) / float64(total)
		}
		rate := float64(n) / max(time.Since(start).Seconds(), 1e-3)
		fmt.Fprintf(w, "\r  %s: %s of %s  %3.0f%%  %s/s   ", what, formatBytes(n), formatBytes(total), pct, formatBytes(int64(rate)))
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-stop:
				fmt.Fprint(w, "\r\033[K")
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
	}
}

// buildReport reports every stored file of the package, what covers it,
// and the verdict.
func buildReport(p *appliance.Package, requireTrusted bool) *verifyReport {
	r := &verifyReport{OK: true, Files: []verifyFile{}, Warnings: append([]string{}, p.Warnings...)}
	fail := func(why string) {
		r.OK = false
		if why != "" {
			r.Warnings = append(r.Warnings, why)
		}
	}
	in := p.Checks
	switch {
	case in.Manifest() == nil && p.Source == appliance.SourceDisk:
		fail("a loose disk image has no manifest, so nothing could be verified")
	case in.Manifest() == nil:
		fail("") // the package's warnings say why
	}
	shown := map[*ova.Member][]string{}
	for _, e := range shownEntries(p) {
		for _, m := range e.Members {
			shown[m] = append(shown[m], e.Path)
		}
	}
	checked := 0
	for _, m := range p.Archive.Files() {
		f := in.File(m)
		vf := verifyFile{Name: m.Name, Algorithm: f.Algorithm(), Expected: f.Expected(), ShownAs: shown[m]}
		if vf.ShownAs == nil {
			vf.ShownAs = []string{}
		}
		role := p.Lookup(m.Name).Role
		switch st := f.Status(); {
		case role == appliance.RoleManifest || role == appliance.RoleCertificate:
			vf.Status = string(role) // the signature covers it, not a digest
		case st == integrity.StatusVerified:
			vf.Status, vf.Actual, vf.Cached = "ok", f.Actual(), f.Cached()
			checked++
		case st == integrity.StatusUnlisted:
			vf.Status = "unlisted"
		case st == integrity.StatusForeign:
			vf.Status = "foreign"
		default:
			vf.Status, vf.Actual = "mismatch", f.Actual()
			checked++
			r.OK = false
		}
		r.Files = append(r.Files, vf)
	}
	if mf := in.Manifest(); mf != nil {
		for _, name := range in.Coverage().Missing {
			e, _ := mf.Lookup(name)
			r.Files = append(r.Files, verifyFile{Name: name, Algorithm: string(e.Algorithm), Expected: fmt.Sprintf("%x", e.Digest),
				Status: "missing", ShownAs: []string{}})
			r.OK = false
		}
		if checked == 0 {
			fail("the manifest lists no file of the package, so nothing could be verified")
		}
	}
	sort.SliceStable(r.Files, func(i, j int) bool { return r.Files[i].Name < r.Files[j].Name })
	sig := in.Signature()
	r.Signature = signatureOf(sig)
	switch {
	case sig.State == "bad":
		fail("")
	case requireTrusted && sig.State != "ok":
		fail("the package is not signed by a trusted signer, and --require-trusted-signer was given")
	}
	return r
}

func printReport(w io.Writer, r *verifyReport, quiet bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if !quiet {
		fmt.Fprintln(tw, "FILE\tALGORITHM\tSTATUS\tDIGEST")
	}
	for _, f := range r.Files {
		bad := f.Status == "mismatch" || f.Status == "missing"
		if quiet && !bad {
			continue
		}
		digest, status := f.Actual, f.Status
		switch {
		case f.Status == "mismatch":
			digest = fmt.Sprintf("expected %s, got %s", f.Expected, orDash(f.Actual))
		case f.Status == "missing":
			digest = "expected " + f.Expected
		case f.Cached:
			status = "ok (cached)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, orDash(f.Algorithm), status, orDash(digest))
	}
	tw.Flush()
	s := r.Signature
	switch {
	case s.Status == "absent" && !quiet:
		fmt.Fprintln(w, "signature: absent (the package is not signed)")
	case s.Status == "ok" && !quiet:
		fmt.Fprintf(w, "signature: valid, signed by %s (chain %s)\n", s.Signer, s.Chain)
	case s.Status == "bad":
		fmt.Fprintf(w, "signature: INVALID: %s\n", s.Error)
	}
	if r.Hashes != nil {
		printHashes(w, r.Hashes) // asked for with --disks: printed even with --quiet
	}
	for _, warn := range r.Warnings {
		if !quiet || !r.OK {
			fmt.Fprintf(w, "warning: %s\n", warn)
		}
	}
	if r.OK {
		fmt.Fprintln(w, "verdict: OK")
	} else {
		fmt.Fprintln(w, "verdict: FAILED")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseOneArchive parses the flags of a command that takes one ARCHIVE.
// When done, the command ends with code: --help was printed, or a usage
// error was.
func parseOneArchive(fs *pflag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	return parseCommand(fs, args, usage, stdout, stderr, false)
}

// parseArchives parses the flags of a command that takes one ARCHIVE or
// more.
func parseArchives(fs *pflag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	return parseCommand(fs, args, usage, stdout, stderr, true)
}

func parseCommand(fs *pflag.FlagSet, args []string, usage string, stdout, stderr io.Writer, several bool) (code int, done bool) {
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintf(stdout, usage, fs.FlagUsages())
		return exitOK, true
	}
	switch {
	case err != nil:
	case several && fs.NArg() == 0:
		err = errors.New("need at least one ARCHIVE")
	case !several && fs.NArg() != 1:
		err = fmt.Errorf("need one ARCHIVE, got %d argument(s)", fs.NArg())
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", fs.Name(), err, fs.Name())
		return exitUsage, true
	}
	return exitOK, false
}
