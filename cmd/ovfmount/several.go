package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// eachSource runs a report command (info, verify) on every archive named,
// in order, and prints one section, or one JSON object, per archive
// (sections of several archives are headed "==> NAME <==", as head(1)
// heads those of several files). An
// archive that cannot be opened is reported (on stderr; in JSON as an
// object with its error) and the others still run. The exit code is the
// worst: an interrupt stops at once, then an unreadable archive (2), then
// a failed verification (1).
func eachSource(srcs []source, stdout, stderr io.Writer, cmd string, asJSON bool,
	run func(source) (report any, code int, err error), print func(report any)) int {
	worst := exitOK
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	for i, s := range srcs {
		r, code, err := run(s)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
			code = codeOf(err)
			if code == exitInterrupted {
				return code
			}
			if asJSON {
				enc.Encode(struct {
					Archive string `json:"archive"`
					Error   string `json:"error"`
				}{shownName(s.arg), err.Error()})
			}
		} else if asJSON {
			enc.Encode(r)
		} else {
			if len(srcs) > 1 {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				fmt.Fprintf(stdout, "==> %s <==\n", shownName(s.arg))
			}
			print(r)
		}
		worst = worse(worst, code)
	}
	return worst
}

// worse orders exit codes by what a script must hear first.
func worse(a, b int) int {
	rank := func(c int) int {
		switch c {
		case exitOK:
			return 0
		case exitVerify:
			return 1
		}
		return 2
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}
