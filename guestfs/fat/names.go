package fat

import (
	"strings"
	"unicode"
	"unicode/utf16"
)

// cp437High is code page 437's upper half: Linux's default codepage= for
// 8.3 names, and what DOS wrote them in.
var cp437High = []rune("ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐" +
	"└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0")

func cp437(c byte) rune {
	if c < 0x80 {
		return rune(c)
	}
	return cp437High[c-0x80]
}

// decodeOEM decodes code page 437 bytes, trimming the space padding, and
// lowercases them when lower says so.
func decodeOEM(b []byte, lower bool) string {
	b = []byte(strings.TrimRight(string(b), " "))
	var sb strings.Builder
	for _, c := range b {
		r := cp437(c)
		if lower {
			r = unicode.ToLower(r)
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// NT's case bits in byte 12 of a short entry: Windows NT and Linux's vfat
// (shortname=mixed, the default) store a name like "readme.txt" as the
// short name README.TXT with these flags instead of a long name, and show
// it in lowercase.
const (
	caseLowerBase = 0x08
	caseLowerExt  = 0x10
)

// shortName is the 8.3 name of a directory entry as Linux's vfat shows it:
// base and extension joined by a dot when there is an extension, each
// lowercased when its NT case bit is set, a leading 0x05 standing for 0xE5.
func shortName(e []byte) string {
	var n [11]byte
	copy(n[:], e[:11])
	if n[0] == 0x05 {
		n[0] = 0xE5
	}
	base := decodeOEM(n[:8], e[12]&caseLowerBase != 0)
	ext := decodeOEM(n[8:11], e[12]&caseLowerExt != 0)
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// lfnChecksum is the checksum of an 8.3 name that each long-name slot
// carries, so that a long name orphaned by an old DOS program renaming
// the file is recognised as stale.
func lfnChecksum(name []byte) byte {
	var s byte
	for _, c := range name[:11] {
		s = (s&1)<<7 + s>>1 + c
	}
	return s
}

// lfnChars copies the 13 UTF-16 code units of a long-name slot.
func lfnChars(e []byte, dst []uint16) {
	i := 0
	for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
		for o := r[0]; o < r[1]; o += 2 {
			dst[i] = uint16(e[o]) | uint16(e[o+1])<<8
			i++
		}
	}
}

// decodeLFN turns the assembled UTF-16 units into UTF-8, stopping at the
// NUL terminator (0xFFFF padding follows it); unpaired surrogates become
// U+FFFD.
func decodeLFN(u []uint16) string {
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	return string(utf16.Decode(u))
}

// foldKey maps a name to a key equal for two names exactly when
// strings.EqualFold says they match: each rune becomes the smallest rune
// of its simple case-folding orbit. That is the case-insensitive match the
// package promises for Lookup.
func foldKey(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		sb.WriteRune(m)
	}
	return sb.String()
}

// validName says whether a decoded name can be shown as a file name:
// hostile volumes can store "/" or NUL in a long name, or an empty one.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}
