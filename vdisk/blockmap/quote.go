package blockmap

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxQuoted bounds how much of a name taken from an image is shown.
const maxQuoted = 256

// Quote quotes a name taken from an image (a parent path, a backing file,
// an extent) as it is written: Windows paths are full of backslashes, and
// strconv.Quote would double every one, showing a path nobody wrote.
// Everything else a hostile image could use to garble a log line (quotes,
// control and format characters such as a right-to-left override, invalid
// UTF-8) is escaped as strconv.Quote does, and a name longer than 256
// bytes is cut, with "..." after the closing quote.
func Quote(s string) string {
	cut := ""
	if len(s) > maxQuoted {
		s, cut = s[:maxQuoted], "..."
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteByte('\\')
		case r != utf8.RuneError && r != '"' && strconv.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.Quote(s[i : i+n])
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	b.WriteByte('"')
	return b.String() + cut
}
