package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/ova"
)

// verifyReport is the result of `ovfmount verify`, and its --json schema.
type verifyReport struct {
	OK        bool            `json:"ok"`
	Files     []verifyFile    `json:"files"`
	Signature verifySignature `json:"signature"`
	Warnings  []string        `json:"warnings"`
}

type verifyFile struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Expected  string `json:"expected"`
	Actual    string `json:"actual"`
	Status    string `json:"status"` // ok, mismatch, missing or unlisted
}

type verifySignature struct {
	Status string `json:"status"` // ok, bad or absent
	Signer string `json:"signer,omitempty"`
	Chain  string `json:"chain,omitempty"` // trusted, untrusted, self-signed or expired
	Error  string `json:"error,omitempty"`
}

const verifyUsage = `Usage: ovfmount verify [flags] ARCHIVE

Checks every file the manifest lists against its digest (in parallel), the
manifest's coverage both ways, and the signature and its chain, then prints
a per-file table and a verdict. A successful run keeps trusted chunk
tables, so a --verify=strict mount of the archive afterwards starts at once.

Flags:
%s
Exit codes: 0 everything is good; 1 a digest mismatch, a missing listed file,
a bad signature, or no manifest at all; 2 usage error or unreadable archive.
`

func runVerify(args []string, stdout, stderr io.Writer) int {
	var v verify
	var asJSON bool
	fs := pflag.NewFlagSet("ovfmount verify", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	v.flags(fs, false)
	if code, done := parseOneArchive(fs, args, verifyUsage, stdout, stderr); done {
		return code
	}
	report, err := verifyArchive(fs.Arg(0), &v, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount verify: %v\n", err)
		return codeOf(err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	} else {
		printReport(stdout, report)
	}
	if !report.OK {
		return exitVerify
	}
	return exitOK
}

func verifyArchive(path string, v *verify, stderr io.Writer) (*verifyReport, error) {
	src, err := openSource(path, v.remote(warnLogger(stderr)))
	if err != nil {
		return nil, err
	}
	defer src.Close()
	opts, err := v.integrityOptions(ova.VerifyLazy, src)
	if err != nil {
		return nil, err
	}
	in := ova.NewIntegrity(src.archive, opts)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var done atomic.Int64
	var progress func(int64)
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		total := in.ListedTotal()
		progress = func(n int64) { done.Add(n) }
		finish := showProgress(f, total, &done)
		defer finish()
	}
	if err := in.VerifyAll(ctx, progress); err != nil {
		return nil, fail(exitUsage, "verification interrupted: %v", err)
	}
	return buildReport(src.archive, in), nil
}

// showProgress draws bytes hashed, the share done and the rate on a
// terminal line until the returned function is called.
func showProgress(w io.Writer, total int64, done *atomic.Int64) func() {
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
		fmt.Fprintf(w, "\r  verifying: %s of %s  %3.0f%%  %s/s   ", human(n), human(total), pct, human(int64(rate)))
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

func human(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

func buildReport(a *ova.Archive, in *ova.Integrity) *verifyReport {
	r := &verifyReport{OK: true, Files: []verifyFile{}, Warnings: []string{}}
	for _, w := range a.Warnings() {
		r.Warnings = append(r.Warnings, w.String())
	}
	r.Warnings = append(r.Warnings, in.Warnings()...)
	if in.Manifest() == nil {
		r.OK = false
		r.Warnings = append(r.Warnings, "the package has no manifest, so nothing could be verified")
	}
	for _, m := range a.Files() {
		f := in.File(m)
		lower := strings.ToLower(m.Name)
		if strings.HasSuffix(lower, ".mf") || strings.HasSuffix(lower, ".cert") {
			continue // never listed: the signature covers the manifest
		}
		vf := verifyFile{Name: m.Name, Algorithm: f.Algorithm(), Expected: f.Expected()}
		switch f.Status() {
		case ova.StatusVerified:
			vf.Status, vf.Actual = "ok", f.Actual()
		case ova.StatusUnlisted:
			vf.Status = "unlisted"
		default:
			vf.Status, vf.Actual = "mismatch", f.Actual()
			r.OK = false
		}
		r.Files = append(r.Files, vf)
	}
	if mf := in.Manifest(); mf != nil {
		for _, name := range in.Coverage().Missing {
			e, _ := mf.Lookup(name)
			r.Files = append(r.Files, verifyFile{Name: name, Algorithm: string(e.Algorithm), Expected: fmt.Sprintf("%x", e.Digest), Status: "missing"})
			r.OK = false
		}
	}
	checked := 0
	for _, f := range r.Files {
		if f.Status != "unlisted" {
			checked++
		}
	}
	if checked == 0 && in.Manifest() != nil {
		r.OK = false
		r.Warnings = append(r.Warnings, "the manifest lists no file of the package, so nothing could be verified")
	}
	sort.SliceStable(r.Files, func(i, j int) bool { return r.Files[i].Name < r.Files[j].Name })
	sig := in.Signature()
	r.Signature = verifySignature{Status: sig.State, Signer: sig.Signer, Chain: sig.Chain}
	if sig.State == "ok-untrusted" {
		r.Signature.Status = "ok"
	}
	if sig.Err != nil {
		r.Signature.Error = sig.Err.Error()
	}
	if sig.State == "bad" {
		r.OK = false
	}
	return r
}

func printReport(w io.Writer, r *verifyReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tALGORITHM\tSTATUS\tDIGEST")
	for _, f := range r.Files {
		digest := f.Expected
		if f.Status == "mismatch" {
			digest = fmt.Sprintf("expected %s, got %s", f.Expected, orDash(f.Actual))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, orDash(f.Algorithm), f.Status, orDash(digest))
	}
	tw.Flush()
	s := r.Signature
	switch {
	case s.Status == "absent":
		fmt.Fprintln(w, "signature: absent (the package is not signed)")
	case s.Status == "ok":
		fmt.Fprintf(w, "signature: valid, signed by %s (chain %s)\n", s.Signer, s.Chain)
	default:
		fmt.Fprintf(w, "signature: INVALID: %s\n", s.Error)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
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
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintf(stdout, usage, fs.FlagUsages())
		return exitOK, true
	}
	if err == nil && fs.NArg() != 1 {
		err = fmt.Errorf("need one ARCHIVE, got %d argument(s)", fs.NArg())
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", fs.Name(), err, fs.Name())
		return exitUsage, true
	}
	return exitOK, false
}
