package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/importers"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// checkReport is what `ovfmount check` says of one archive, and its
// --json schema (documented in the README).
type checkReport struct {
	Archive string `json:"archive"`
	// Targets are the importers checked, each with its verdict.
	Targets []checkTarget `json:"targets"`
	// Findings are every rule broken, for every target checked, grouped
	// by target.
	Findings []importers.Finding `json:"findings"`
	// Failed is set when any target fails: the exit code is then 1.
	Failed bool `json:"failed"`
}

// checkTarget is one importer's verdict: "fail" when a finding fails it,
// "warn" when it has warnings only, "ok" otherwise.
type checkTarget struct {
	Name     string `json:"name"`
	Verdict  string `json:"verdict"`
	Failures int    `json:"failures"`
	Warnings int    `json:"warnings"`
}

const checkUsage = `Usage: ovfmount check [flags] ARCHIVE...

Checks an appliance (an .ova file or URL, an unpacked package's .ovf or
folder) against what each importer accepts, before a long upload finds out:
member order, tar header formats, the manifest's algorithm and syntax, the
certificate, disk formats and subformats, ovf:capacity, ovf:size,
ovf:compression, ovf:chunkSize, hardware versions, the OVF version, the
descriptor's XML, and referenced or unreferenced files. It reads the
descriptor, manifest, certificate, tar headers and disk headers only, so it
answers at once whatever the appliance's size; it verifies no digest
(verify does).

Each finding names the target, the rule, its severity, the member or
element concerned, a one-line fix, and the source that says the importer
behaves so. A "fail" means the importer refuses the package or imports it
wrongly; a "warn" means something goes unchecked or is lost, or the
importer's behaviour could not be confirmed.

Targets (--target, comma-separated; default: all):
  vsphere     VMware ovftool and the vSphere client
  virtualbox  VirtualBox's appliance import
  virt-v2v    virt-v2v -i ova
  proxmox     Proxmox VE's OVF/OVA import (qm importovf)
  ovirt       oVirt's OVA import (which converts with virt-v2v)
  spec        DMTF DSP0243 itself

Rules (each documented with its sources in docs/importers.md):
%s
Exit codes:
   0  no target fails (warnings may remain)
   1  at least one target fails
   2  usage error (an unknown target), or an archive that is missing,
      unreadable, or not an OVA or OVF package

Flags:
%s`

func runCheck(args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	var targets, vsphere string
	var v verify
	fl := pflag.NewFlagSet("ovfmount check", pflag.ContinueOnError)
	fl.SortFlags = false
	fl.SetOutput(io.Discard)
	fl.StringVar(&targets, "target", "", "the importers to check against, comma-separated: vsphere, virtualbox, virt-v2v, proxmox, ovirt, spec (default: all)")
	fl.StringVar(&vsphere, "vsphere-version", "", "the ESXi release the appliance must deploy on (e.g. 7.0U2, 8.0): a newer hardware version (vmx-NN) then fails the vsphere target; without it each vmx-NN is a warning naming the oldest release that runs it")
	fl.BoolVar(&asJSON, "json", false, "print one JSON report per archive (for CI): the targets' verdicts and every finding")
	v.flags(fl, false)
	usage := fmt.Sprintf(checkUsage, ruleList(), "%s")
	if code, done := parseArchives(fl, args, usage, stdout, stderr); done {
		return code
	}
	opts, err := checkOptions(targets, vsphere)
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount check: %v\nRun 'ovfmount check --help' for usage.\n", err)
		return exitUsage
	}
	srcs, _, err := expandSources(fl.Args(), &v)
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount check: %v\n", err)
		return codeOf(err)
	}
	return eachSource(srcs, stdout, stderr, "ovfmount check", asJSON, func(s source) (any, int, error) {
		r, err := checkOf(s.arg, &v, opts, stderr)
		if err != nil {
			return nil, 0, err
		}
		code := exitOK
		if r.Failed {
			code = exitVerify
		}
		return r, code, nil
	}, func(r any) { printCheck(stdout, r.(*checkReport)) })
}

// checkOptions reads --target and --vsphere-version.
func checkOptions(targets, vsphere string) (importers.Options, error) {
	var opts importers.Options
	if strings.TrimSpace(targets) != "" {
		seen := map[importers.Target]bool{}
		for _, s := range strings.Split(targets, ",") {
			s = strings.ToLower(strings.TrimSpace(s))
			if s == "all" {
				opts.Targets = nil
				seen = nil
				break
			}
			t, ok := importers.ParseTarget(s)
			if !ok {
				names := make([]string, len(importers.Targets))
				for i, t := range importers.Targets {
					names[i] = string(t)
				}
				return opts, fmt.Errorf("--target: unknown target %q; the targets are %s (or all)", s, strings.Join(names, ", "))
			}
			if !seen[t] {
				seen[t] = true
				opts.Targets = append(opts.Targets, t)
			}
		}
	}
	if vsphere != "" && !importers.ValidVSphereVersion(vsphere) {
		return opts, fmt.Errorf("--vsphere-version: %q is not an ESXi release such as 6.7, 7.0U2 or 8.0 (ESXi 3.5 or later)", vsphere)
	}
	opts.VSphereVersion = vsphere
	return opts, nil
}

// checkOf checks one archive. Integrity is off: check reads metadata and
// headers, never whole files.
func checkOf(arg string, v *verify, opts importers.Options, stderr io.Writer) (*checkReport, error) {
	pkg, rf, err := openPackage(arg, v, openWith{mode: integrity.Off, log: warnLogger(stderr)})
	if err != nil {
		return nil, err
	}
	defer pkg.Close()
	if rf != nil {
		defer rf.Close()
	}
	fs := importers.Check(pkg, opts)
	r := &checkReport{Archive: shownName(arg), Findings: fs, Failed: importers.Failed(fs)}
	if r.Findings == nil {
		r.Findings = []importers.Finding{}
	}
	targets := opts.Targets
	if len(targets) == 0 {
		targets = importers.Targets
	}
	for _, t := range targets {
		ct := checkTarget{Name: string(t), Verdict: "ok"}
		for _, f := range fs {
			if f.Target != t {
				continue
			}
			if f.Severity == importers.Fail {
				ct.Failures++
			} else {
				ct.Warnings++
			}
		}
		switch {
		case ct.Failures > 0:
			ct.Verdict = "fail"
		case ct.Warnings > 0:
			ct.Verdict = "warn"
		}
		r.Targets = append(r.Targets, ct)
	}
	return r, nil
}

// printCheck prints the findings grouped by importer, each with its fix.
func printCheck(w io.Writer, r *checkReport) {
	for i, t := range r.Targets {
		if i > 0 {
			fmt.Fprintln(w)
		}
		head := strings.ToUpper(t.Verdict)
		switch t.Verdict {
		case "fail":
			head += fmt.Sprintf(" (%d failing, %d warnings)", t.Failures, t.Warnings)
		case "warn":
			head += fmt.Sprintf(" (%d warnings)", t.Warnings)
		}
		fmt.Fprintf(w, "%s: %s\n", t.Name, head)
		for _, f := range r.Findings {
			if string(f.Target) != t.Name {
				continue
			}
			fmt.Fprintf(w, "  %-4s %s: %s: %s\n", f.Severity, f.Rule, f.Subject, f.Message)
			fmt.Fprintf(w, "       fix: %s\n", f.Fix)
			fmt.Fprintf(w, "       source: %s\n", f.Source)
		}
	}
}

// ruleList is the rules' ids and what each checks, for --help.
func ruleList() string {
	var b strings.Builder
	for _, r := range importers.Rules {
		fmt.Fprintf(&b, "  %-21s %s\n", r.ID, r.What)
	}
	return b.String()
}
