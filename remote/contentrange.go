package remote

import "strings"

// maxSize bounds every size and offset taken from a server. 2^60 bytes
// (1 EiB) is far above any appliance, and far enough below 2^63 that block
// arithmetic (an offset plus a block size, a count of blocks) can never
// overflow, whatever a hostile server claims.
const maxSize = 1 << 60

// contentRange is a parsed Content-Range header of a byte-range answer
// (RFC 9110, section 14.4).
type contentRange struct {
	first, last int64 // inclusive; both -1 for an unsatisfied range ("bytes */N")
	total       int64 // complete length, or -1 when the server sent "*"
}

// unsatisfied reports whether this is the "bytes */N" form a 416 carries.
func (c contentRange) unsatisfied() bool { return c.first < 0 }

// parseContentRange parses a Content-Range value strictly: anything but
// "bytes FIRST-LAST/TOTAL", "bytes FIRST-LAST/*" or "bytes */TOTAL" with
// FIRST <= LAST < TOTAL is an error, because every later check (is this the
// range asked for, is the file the same size) relies on these numbers
// being exactly what they claim.
func parseContentRange(s string) (contentRange, error) {
	bad := func() (contentRange, error) {
		return contentRange{}, protocolf("malformed Content-Range %s", quoteHeader(s))
	}
	const unit = "bytes "
	if len(s) <= len(unit) || !strings.EqualFold(s[:len(unit)], unit) {
		return bad()
	}
	spec := s[len(unit):]
	slash := strings.IndexByte(spec, '/')
	if slash < 0 {
		return bad()
	}
	rng, tot := spec[:slash], spec[slash+1:]
	cr := contentRange{first: -1, last: -1, total: -1}
	if tot != "*" {
		n, ok := parseDigits(tot)
		if !ok {
			return bad()
		}
		cr.total = n
	}
	if rng == "*" {
		if cr.total < 0 {
			return bad() // "bytes */*" says nothing
		}
		return cr, nil
	}
	dash := strings.IndexByte(rng, '-')
	if dash < 0 {
		return bad()
	}
	first, ok1 := parseDigits(rng[:dash])
	last, ok2 := parseDigits(rng[dash+1:])
	if !ok1 || !ok2 || last < first || (cr.total >= 0 && last >= cr.total) {
		return bad()
	}
	cr.first, cr.last = first, last
	return cr, nil
}

// parseDigits parses a non-empty run of ASCII digits no greater than
// maxSize. Unlike strconv it accepts no sign, no underscores and no
// spaces, which a header number never has.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (maxSize-d)/10 { // checked before multiplying: 10 * 2^60 overflows
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
