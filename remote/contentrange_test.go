package remote

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"testing"
)

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		{"bytes 0-0/1", 0, 0, 1, true},
		{"bytes 0-1048575/3145728", 0, 1048575, 3145728, true},
		{"BYTES 5-9/10", 5, 9, 10, true},
		{"bytes 5-9/*", 5, 9, -1, true},
		{"bytes */0", -1, -1, 0, true},
		{"bytes */100", -1, -1, 100, true},
		{"bytes 007-010/0100", 7, 10, 100, true},
		{"bytes 9-5/10", 0, 0, 0, false},    // last before first
		{"bytes 5-10/10", 0, 0, 0, false},   // last beyond the end
		{"bytes */*", 0, 0, 0, false},       // says nothing
		{"bytes 0-5", 0, 0, 0, false},       // no total
		{"bytes -5-9/10", 0, 0, 0, false},   // sign
		{"bytes +5-9/10", 0, 0, 0, false},   // sign
		{"bytes 5 -9/10", 0, 0, 0, false},   // space
		{"bytes  5-9/10", 0, 0, 0, false},   // two spaces
		{"bytes=5-9/10", 0, 0, 0, false},    // request syntax
		{"items 5-9/10", 0, 0, 0, false},    // other unit
		{"bytes 5-9/10/11", 0, 0, 0, false}, // extra
		{"bytes 0-1/1152921504606846976", 0, 1, 1 << 60, true},
		{"bytes 0-1/1152921504606846977", 0, 0, 0, false}, // beyond maxSize
		{"bytes 0-1/99999999999999999999999999", 0, 0, 0, false},
		{"bytes 0x10-0x20/100", 0, 0, 0, false},
		{"bytes ", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		cr, err := parseContentRange(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%q: error %v, want ok %v", c.in, err, c.ok)
			continue
		}
		if !c.ok {
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("%q: error %v is not ErrProtocol", c.in, err)
			}
			continue
		}
		if cr.first != c.first || cr.last != c.last || cr.total != c.total {
			t.Errorf("%q = %+v, want %d-%d/%d", c.in, cr, c.first, c.last, c.total)
		}
	}
}

// The grammar of RFC 9110's Content-Range, written as differently as
// possible from parseContentRange, to check it against.
var contentRangeGrammar = regexp.MustCompile(`^(?:(\d+)-(\d+)|\*)/(\d+|\*)$`)

func referenceContentRange(s string) (contentRange, bool) {
	if len(s) < 6 {
		return contentRange{}, false
	}
	unit := []byte(s[:6])
	for i, c := range unit {
		if 'A' <= c && c <= 'Z' {
			unit[i] = c + 'a' - 'A'
		}
	}
	if string(unit) != "bytes " {
		return contentRange{}, false
	}
	m := contentRangeGrammar.FindStringSubmatch(s[6:])
	if m == nil {
		return contentRange{}, false
	}
	num := func(d string) (int64, bool) {
		n, err := strconv.ParseInt(d, 10, 64)
		return n, err == nil && n <= maxSize
	}
	cr := contentRange{first: -1, last: -1, total: -1}
	if m[3] != "*" {
		n, ok := num(m[3])
		if !ok {
			return cr, false
		}
		cr.total = n
	}
	if m[1] == "" {
		return cr, cr.total >= 0
	}
	first, ok1 := num(m[1])
	last, ok2 := num(m[2])
	if !ok1 || !ok2 || first > last || cr.total >= 0 && last >= cr.total {
		return cr, false
	}
	cr.first, cr.last = first, last
	return cr, true
}

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 0-1048575/3145728", "bytes */0", "bytes 5-9/*", "BYTES 1-1/2",
		"bytes 9-5/10", "bytes -1-2/3", "bytes 0-1/99999999999999999999", "bytes */*",
		"bytes 0-1152921504606846975/1152921504606846976", "bytes 0-0/0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := parseContentRange(s)
		ref, ok := referenceContentRange(s)
		if (err == nil) != ok {
			t.Fatalf("%q: parse error %v, reference ok %v", s, err, ok)
		}
		if err != nil {
			return
		}
		if cr != ref {
			t.Fatalf("%q: %+v, reference %+v", s, cr, ref)
		}
		// What it accepts is consistent, and says the same written out
		// again.
		if cr.unsatisfied() {
			if cr.first != -1 || cr.last != -1 || cr.total < 0 {
				t.Fatalf("%q: inconsistent %+v", s, cr)
			}
			return
		}
		if cr.first < 0 || cr.first > cr.last || cr.last > maxSize || cr.total > maxSize || cr.total >= 0 && cr.last >= cr.total {
			t.Fatalf("%q: inconsistent %+v", s, cr)
		}
		total := "*"
		if cr.total >= 0 {
			total = strconv.FormatInt(cr.total, 10)
		}
		again, err := parseContentRange(fmt.Sprintf("bytes %d-%d/%s", cr.first, cr.last, total))
		if err != nil || again != cr {
			t.Fatalf("%q: written out again, parses as %+v, %v", s, again, err)
		}
	})
}

// Numbers around maxSize, where a check after the multiplication would
// already have overflowed.
func TestParseDigitsBounds(t *testing.T) {
	for s, want := range map[string]int64{
		"0": 0, "1152921504606846976": maxSize, "0001152921504606846976": maxSize,
		"1152921504606846977": -1, "9227000000000000000": -1, "9270000010200700000": -1,
		"99999999999999999999999": -1, "": -1, "1a": -1,
	} {
		n, ok := parseDigits(s)
		if (want < 0) == ok || ok && n != want {
			t.Errorf("parseDigits(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
}
