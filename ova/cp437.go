package ova

import "strings"

// cp437High maps bytes 0x80 to 0xFF of IBM code page 437, which the zip
// format (APPNOTE appendix D) prescribes for names without the UTF-8 flag.
var cp437High = []rune("" +
	"ÇüéâäàåçêëèïîìÄÅ" +
	"ÉæÆôöòûùÿÖÜ¢£¥₧ƒ" +
	"áíóúñÑªº¿⌐¬½¼¡«»" +
	"░▒▓│┤╡╢╖╕╣║╗╝╜╛┐" +
	"└┴┬├─┼╞╟╚╔╩╦╠═╬╧" +
	"╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀" +
	"αßΓπΣσµτΦΘΩδ∞φε∩" +
	"≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0")

// decodeCP437 turns a CP437 name into UTF-8. The low half is ASCII (the
// control-character glyphs of 0x01 to 0x1F are not names anyone means).
func decodeCP437(b []byte) string {
	var s strings.Builder
	s.Grow(len(b) + len(b)/2)
	for _, c := range b {
		if c < 0x80 {
			s.WriteByte(c)
		} else {
			s.WriteRune(cp437High[c-0x80])
		}
	}
	return s.String()
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
