package ovf

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

var (
	errUnits    = errors.New("not a byte unit")
	errOverflow = errors.New("beyond 2^63 bytes")
	errNumber   = errors.New("not a non-negative integer")
)

// unitWords are the base units a byte quantity may be written in. The
// DSP0004 programmatic units ("byte", "kilobyte", "kibibyte", ...) mean
// what DSP0004 says: kilo is 1000, kibi 1024. The capitalised plurals
// ("KiloBytes", "MegaBytes", "GigaBytes") are the older CIM AllocationUnits
// strings, which VMware's OVF 0.9 tools, VirtualBox and XenServer write and
// read as powers of 1024 ("512 MB of memory" is 512 MegaBytes); they, and
// the bare abbreviations, are read the same way here.
var unitWords = map[string]int64{
	"byte": 1, "bytes": 1,
	"kilobyte": 1e3, "megabyte": 1e6, "gigabyte": 1e9, "terabyte": 1e12, "petabyte": 1e15, "exabyte": 1e18,
	"kibibyte": 1 << 10, "mebibyte": 1 << 20, "gibibyte": 1 << 30, "tebibyte": 1 << 40, "pebibyte": 1 << 50, "exbibyte": 1 << 60,
	"kilobytes": 1 << 10, "megabytes": 1 << 20, "gigabytes": 1 << 30, "terabytes": 1 << 40,
	"kibibytes": 1 << 10, "mebibytes": 1 << 20, "gibibytes": 1 << 30, "tebibytes": 1 << 40,
	"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
}

// hertzWords are the base units of a processor allocation: DSP0004's
// "hertz * 10^6" is what producers write, the prefixed words are the same
// programmatic units spelled out.
var hertzWords = map[string]int64{
	"hertz": 1, "hz": 1,
	"kilohertz": 1e3, "megahertz": 1e6, "gigahertz": 1e9,
	"khz": 1e3, "mhz": 1e6, "ghz": 1e9,
}

// parseUnits returns how many bytes one unit of s is: "byte * 2^30",
// "byte*2^20", "byte * 1024", "kilobyte", "MegaBytes". Blanks are optional
// around "*" and "^"; case does not matter. Exactly one base unit must
// appear; the other factors are integers or integer powers.
func parseUnits(s string) (int64, error) {
	return parseScale(s, unitWords)
}

// parseScale is parseUnits with the base units words gives.
func parseScale(s string, words map[string]int64) (int64, error) {
	s = strings.ToLower(strings.Join(strings.Fields(s), ""))
	if s == "" {
		return 0, errUnits
	}
	mult, bases := int64(1), 0
	for _, tok := range strings.Split(s, "*") {
		var f int64
		if w, ok := words[tok]; ok {
			f = w
			bases++
		} else if b, e, ok := strings.Cut(tok, "^"); ok {
			base, err1 := strconv.ParseInt(b, 10, 64)
			exp, err2 := strconv.ParseInt(e, 10, 64)
			if err1 != nil || err2 != nil || base < 1 || exp < 0 {
				return 0, errUnits
			}
			var err error
			if f, err = power(base, exp); err != nil {
				return 0, err
			}
		} else {
			n, err := strconv.ParseInt(tok, 10, 64)
			if err != nil || n < 1 {
				return 0, errUnits
			}
			f = n
		}
		var err error
		if mult, err = mul(mult, f); err != nil {
			return 0, err
		}
	}
	if bases != 1 {
		return 0, errUnits
	}
	return mult, nil
}

// power is base^exp, failing rather than wrapping past int64.
func power(base, exp int64) (int64, error) {
	r := int64(1)
	for i := int64(0); i < exp; i++ {
		if base == 1 {
			break
		}
		var err error
		if r, err = mul(r, base); err != nil {
			return 0, err
		}
	}
	return r, nil
}

// mul multiplies two non-negative int64s, failing on overflow.
func mul(a, b int64) (int64, error) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, errOverflow
	}
	return int64(lo), nil
}

// parseCount parses a non-negative decimal integer as written in a
// descriptor (surrounding blanks allowed).
func parseCount(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange && !strings.HasPrefix(strings.TrimSpace(s), "-") {
			return 0, errOverflow
		}
		return 0, errNumber
	}
	if n < 0 {
		return 0, errNumber
	}
	return n, nil
}

// bytesOf is quantity × units in bytes; units "" means bytes.
func bytesOf(quantity, units string) (int64, error) {
	n, err := parseCount(quantity)
	if err != nil {
		return 0, err
	}
	m := int64(1)
	if strings.TrimSpace(units) != "" {
		if m, err = parseUnits(units); err != nil {
			return 0, err
		}
	}
	return mul(n, m)
}
