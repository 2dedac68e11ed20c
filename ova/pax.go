package ova

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxSpecialSize bounds pax headers, GNU long names and sparse maps: no
// genuine one comes near it, and a hostile size must not drive an
// allocation.
const maxSpecialSize = 1 << 20

type paxRecord struct{ key, value string }

var errPax = errors.New("malformed pax record")

// parsePax splits a pax extended header into its records, in order, since
// the GNU 0.0 sparse format repeats keys and their order matters.
func parsePax(data []byte) ([]paxRecord, error) {
	var recs []paxRecord
	s := string(data)
	for len(s) > 0 {
		// A NUL-padded tail is tolerated: some writers pad the block.
		if strings.Trim(s, "\x00") == "" {
			break
		}
		sp := strings.IndexByte(s, ' ')
		if sp <= 0 {
			return recs, fmt.Errorf("%w: no length", errPax)
		}
		n, err := strconv.Atoi(s[:sp])
		if err != nil || n <= sp+1 || n > len(s) {
			return recs, fmt.Errorf("%w: bad length %q", errPax, s[:sp])
		}
		rec := s[sp+1 : n]
		if !strings.HasSuffix(rec, "\n") {
			return recs, fmt.Errorf("%w: record not terminated by a newline", errPax)
		}
		rec = rec[:len(rec)-1]
		eq := strings.IndexByte(rec, '=')
		if eq <= 0 {
			return recs, fmt.Errorf("%w: no key", errPax)
		}
		recs = append(recs, paxRecord{rec[:eq], rec[eq+1:]})
		s = s[n:]
	}
	return recs, nil
}

// parsePaxTime reads a pax time: decimal seconds with an optional fraction.
func parsePaxTime(s string) (time.Time, error) {
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q", errPax, s)
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: time %q", errPax, s)
		}
		nsec = int64(f)
		for i := len(frac); i < 9; i++ {
			nsec *= 10
		}
		if strings.HasPrefix(secs, "-") {
			nsec = -nsec
		}
	}
	return time.Unix(sec, nsec), nil
}

func parsePaxInt(key, s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v == math.MaxInt64 {
		return 0, fmt.Errorf("%w: %s=%q", errPax, key, s)
	}
	return v, nil
}
