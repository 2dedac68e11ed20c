package blockmap

import (
	"strings"
	"testing"
)

// TestQuote: a name from an image is shown as written, backslashes
// included, with what could garble a log line escaped, and cut when long.
func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`C:\VMs\base-disk.vhd`, `"C:\VMs\base-disk.vhd"`},
		{`\\server\share\disk.vhd`, `"\\server\share\disk.vhd"`},
		{"café/disk.vhd", `"café/disk.vhd"`},
		{`say "hi".vhd`, `"say \"hi\".vhd"`},
		{"two\nlines\x00", `"two\nlines\x00"`},
		{"p\u202e.vhd", `"p\u202e.vhd"`},
		{"bad\xffutf8", `"bad\xffutf8"`},
		{"", `""`},
		{strings.Repeat("a", 300), `"` + strings.Repeat("a", 256) + `"...`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
