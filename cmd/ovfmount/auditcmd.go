package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/audit"
)

const auditUsage = `Usage: ovfmount audit verify [flags] FILE

Checks a read audit log, as a mount with --audit-log FILE writes it: each
line must carry the SHA-256 of the line before it and the next sequence
number, so a line edited, removed or moved, or a log cut mid-line, breaks
the chain. It names the first bad line and why, then prints what the log
says was read: per file, the bytes served, the ranges (merged), the
readers (process, user, group) and the first and last time.

The last line has no line after it to vouch for it: its SHA-256, the head,
is printed here and logged by the mount when it stops. Keep it elsewhere,
and --head checks that the log still holds that line (lines appended since
are fine), which also finds lines cut from the end.

FILE "-" reads the log from standard input.

Exit status: 0 when the chain is intact, 1 when it is broken, 2 for a
usage error or a log that cannot be read.

Flags:
%s`

// auditOutput is what audit verify --json prints: the report, and the file.
type auditOutput struct {
	File string `json:"file"`
	*audit.Report
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fl := auditFlags(new(bool), new(string), new(int))
		fmt.Fprintf(stdout, auditUsage, fl.FlagUsages())
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] != "verify" {
		fmt.Fprintf(stderr, "ovfmount audit: unknown subcommand %q (the one there is: verify)\nRun 'ovfmount audit --help' for usage.\n", args[0])
		return exitUsage
	}
	var asJSON bool
	var head string
	var most int
	fl := auditFlags(&asJSON, &head, &most)
	err := fl.Parse(args[1:])
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintf(stdout, auditUsage, fl.FlagUsages())
		return exitOK
	}
	head = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(head)), "sha256:")
	switch {
	case err != nil:
	case fl.NArg() != 1:
		err = fmt.Errorf("need one FILE, got %d argument(s)", fl.NArg())
	case head != "" && !hexSHA256.MatchString(head):
		err = fmt.Errorf("--head %q is not a SHA-256 (64 hex digits)", head)
	case most < 0:
		err = errors.New("--ranges must not be negative")
	}
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount audit verify: %v\nRun 'ovfmount audit --help' for usage.\n", err)
		return exitUsage
	}
	path := fl.Arg(0)
	var f *os.File
	if path == "-" {
		f, err = os.Stdin, nil
	} else {
		f, err = os.Open(path)
	}
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil && st.IsDir() {
			err = errors.New("is a folder")
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount audit verify: %s: %v\n", path, err)
		return exitUsage
	}
	defer f.Close()
	rep, err := audit.Verify(f, head)
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount audit verify: reading %s: %v\n", path, err)
		return exitUsage
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(auditOutput{File: path, Report: rep}); err != nil {
			return exitInternal
		}
	} else {
		printAudit(stdout, path, rep, most)
	}
	if !rep.Intact {
		return exitVerify
	}
	return exitOK
}

func auditFlags(asJSON *bool, head *string, most *int) *pflag.FlagSet {
	fl := pflag.NewFlagSet("ovfmount audit verify", pflag.ContinueOnError)
	fl.SortFlags = false
	fl.SetOutput(io.Discard)
	fl.BoolVar(asJSON, "json", false, "print the report as JSON: intact, head, problem {line, kind, message}, notes, sessions, and files with every range")
	fl.StringVar(head, "head", "", "a head kept from earlier (the SHA-256 of what was then the log's last line): the log must still hold that line")
	fl.IntVar(most, "ranges", 8, "ranges listed per file in the text report (all are in --json)")
	return fl
}

func printAudit(w io.Writer, path string, rep *audit.Report, most int) {
	if rep.Intact {
		fmt.Fprintf(w, "%s: intact, %s, %s\n", path, plural(rep.Lines, "line"), plural(len(rep.Sessions), "session"))
	} else {
		p := rep.Problem
		fmt.Fprintf(w, "%s: BROKEN at line %d (%s): %s\n", path, p.Line, p.Kind, p.Message)
	}
	if rep.Head != "" && rep.Intact {
		fmt.Fprintf(w, "head: sha256:%s (the SHA-256 of its last line: keep it to check the log later with --head)\n", rep.Head)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if !rep.Intact {
		fmt.Fprintln(w, "what its lines say, unproven:")
	}
	fmt.Fprintln(w)
	for i, s := range rep.Sessions {
		stop := "no stop line"
		if s.Stop != nil {
			stop = "stopped " + stamp(*s.Stop)
		}
		fmt.Fprintf(w, "session %d (line %d): %s on %s, started %s, %s, %d opens\n", i+1, s.Line, s.Archive, s.Mountpoint, stamp(s.Start), stop, s.Opens)
		if s.Identity != "" {
			fmt.Fprintf(w, "  identity %s\n", s.Identity)
		}
	}
	if len(rep.Files) == 0 {
		fmt.Fprintln(w, "\nno file was read")
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tOPENS\tSERVED\tDISTINCT\tRANGES\tREADERS\tFIRST\tLAST")
	for _, f := range rep.Files {
		first, last := "-", "-"
		if f.First != nil {
			first, last = stamp(*f.First), stamp(*f.Last)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", shownPath(f), f.Opens, formatBytes(f.Bytes), formatBytes(f.DistinctBytes),
			len(f.Ranges), readersString(f.Readers), first, last)
	}
	tw.Flush()
	if most == 0 {
		return
	}
	for _, f := range rep.Files {
		if len(f.Ranges) == 0 {
			continue
		}
		parts := make([]string, 0, min(len(f.Ranges), most))
		for _, r := range f.Ranges[:min(len(f.Ranges), most)] {
			parts = append(parts, fmt.Sprintf("%d+%d", r[0], r[1]))
		}
		more := ""
		if len(f.Ranges) > most {
			more = fmt.Sprintf(" ... (%d more; all in --json)", len(f.Ranges)-most)
		}
		fmt.Fprintf(w, "%s: %s%s\n", shownPath(f), strings.Join(parts, " "), more)
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func shownPath(f audit.FileRead) string {
	if f.PathHex != "" {
		return f.Path + " (bytes " + f.PathHex + ")"
	}
	return f.Path
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func readersString(rs []audit.Reader) string {
	const shown = 4
	if len(rs) == 0 {
		return "-"
	}
	parts := make([]string, 0, shown)
	for _, r := range rs[:min(len(rs), shown)] {
		parts = append(parts, fmt.Sprintf("pid %d uid %d", r.Pid, r.Uid))
	}
	if len(rs) > shown {
		parts = append(parts, fmt.Sprintf("+%d more", len(rs)-shown))
	}
	return strings.Join(parts, ", ")
}
