package ntfs

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// NTFS names are UTF-16 code units that Windows does not check for
// pairing. They are shown as UTF-8, and a lone surrogate as the three-byte
// form of its code point (WTF-8), so that every name on the volume has a
// distinct text that Lookup maps back to the same code units.

// decodeName turns little-endian UTF-16 into WTF-8.
func decodeName(b []byte) string {
	n := len(b) / 2
	out := make([]byte, 0, n+n/2)
	for i := 0; i < n; i++ {
		u := rune(binary.LittleEndian.Uint16(b[2*i:]))
		switch {
		case u < 0x80:
			out = append(out, byte(u))
			continue
		case utf16.IsSurrogate(u):
			if u < 0xdc00 && i+1 < n {
				v := rune(binary.LittleEndian.Uint16(b[2*i+2:]))
				if v >= 0xdc00 && v < 0xe000 {
					out = utf8.AppendRune(out, utf16.DecodeRune(u, v))
					i++
					continue
				}
			}
			out = append(out, 0xe0|byte(u>>12), 0x80|byte(u>>6)&0x3f, 0x80|byte(u)&0x3f)
			continue
		}
		out = utf8.AppendRune(out, u)
	}
	return string(out)
}

// encodeName turns WTF-8 back into UTF-16 code units; false when s holds
// bytes no NTFS name decodes to.
func encodeName(s string) ([]uint16, bool) {
	out := make([]uint16, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			// A lone surrogate in its three-byte form.
			if i+3 <= len(s) && s[i] == 0xed && s[i+1] >= 0xa0 && s[i+1] <= 0xbf && s[i+2]&0xc0 == 0x80 {
				out = append(out, uint16(0xd000|uint16(s[i+1]&0x3f)<<6|uint16(s[i+2]&0x3f)))
				i += 3
				continue
			}
			return nil, false
		}
		if r >= 0x10000 {
			a, b := utf16.EncodeRune(r)
			out = append(out, uint16(a), uint16(b))
		} else {
			out = append(out, uint16(r))
		}
		i += size
	}
	return out, true
}
