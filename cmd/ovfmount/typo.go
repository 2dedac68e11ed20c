package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// commands are the names run dispatches on, which a mistyped first
// argument is compared with.
var commands = []string{"info", "verify", "check", "serve", "overlay", "map", "audit", "version", "help"}

// mistypedCommand returns a usage error when arg, the first argument, is
// not an existing path but is a small edit away from a command: "ovfmount
// inf x" would otherwise try to mount an archive named "inf" on "x" and
// fail with "inf: no such file", which hides the slip. A path that exists
// is always an archive, whatever its name, and anything that is not
// close to a command is left to the mount command's own errors.
func mistypedCommand(arg string) error {
	if strings.HasPrefix(arg, "-") {
		return nil
	}
	c := closestCommand(arg)
	if c == "" {
		return nil
	}
	if _, err := os.Lstat(arg); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("unknown command %q (did you mean %q?); ARCHIVE %q does not exist either", arg, c, arg)
}

// closestCommand is the command nearest to s, if it is a slip away: one
// edit for the four-letter names, two for the longer ones (an insertion,
// deletion, substitution or swap of neighbours each count one), ignoring
// case. It is "" when none is that close.
func closestCommand(s string) string {
	best, bestDist := "", 0
	for _, c := range commands {
		d := editDistance(strings.ToLower(s), c)
		if d <= max(1, len(c)/3) && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: Levenshtein's, with a swap of two neighbours counting one, the
// commonest typing slip ("verfiy").
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
