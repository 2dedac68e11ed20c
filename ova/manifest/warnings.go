package manifest

import (
	"fmt"
	"strconv"
)

// warnings collects non-fatal findings up to a cap, then only counts them,
// so that a file of megabytes of junk yields a readable list and a summary
// rather than a million strings.
type warnings struct {
	list    []string
	dropped int
}

func (w *warnings) add(format string, args ...any) {
	if len(w.list) >= MaxWarnings {
		w.dropped++
		return
	}
	w.list = append(w.list, fmt.Sprintf(format, args...))
}

// line records a finding about one line of the input, numbered from 1.
func (w *warnings) line(n int, format string, args ...any) {
	if len(w.list) >= MaxWarnings {
		w.dropped++
		return
	}
	w.list = append(w.list, "line "+strconv.Itoa(n)+": "+fmt.Sprintf(format, args...))
}

// result returns the warnings, ending with the count of those dropped.
func (w *warnings) result() []string {
	if w.dropped > 0 {
		return append(w.list, fmt.Sprintf("%d more warnings not shown", w.dropped))
	}
	return w.list
}

// snippet is text from the input, quoted when a warning prints it so that
// a 15 MB garbage line or one full of NUL bytes stays short and printable.
// Quoting waits until fmt formats the warning, so the millions of warnings
// dropped past MaxWarnings cost nothing.
type snippet string

func (s snippet) String() string {
	const max = 48
	if len(s) > max {
		return strconv.Quote(string(s[:max])) + "..."
	}
	return strconv.Quote(string(s))
}
