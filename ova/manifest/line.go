package manifest

import (
	"path"
	"strings"
)

// blanks are the characters trimmed around each delimiter and at both ends
// of a line: IPRT pads "(", ")" and "=" with blanks, Windows tools end
// lines with CR, and editors leave trailing whitespace.
const blanks = " \t\r\v\f"

// fields is one line of the manifest grammar, split but not interpreted:
//
//	ALG "(" NAME ")" "=" VALUE
//
// with blanks allowed around every delimiter. The same grammar carries the
// signature line of a certificate file, whose VALUE is the signature.
type fields struct {
	alg, name, value string
}

// splitLine splits a trimmed, non-blank line. The name runs from the first
// "(" to the last ")", as govmomi reads it, because an algorithm name never
// holds "(" and a hex value never holds ")": names with blanks, "(", ")" or
// "=" then need no quoting. It returns what is wrong when the line is not
// in the grammar.
func splitLine(s string) (fields, string) {
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return fields{}, `no "("`
	}
	end := strings.LastIndexByte(s, ')')
	if end < open {
		return fields{}, `no ")" after the name`
	}
	alg := strings.TrimRight(s[:open], blanks)
	if !isToken(alg) {
		return fields{}, `no algorithm name before "("`
	}
	rest := strings.TrimLeft(s[end+1:], blanks)
	if !strings.HasPrefix(rest, "=") {
		return fields{}, `no "=" after the name`
	}
	value := strings.TrimLeft(rest[1:], blanks)
	if value == "" {
		return fields{}, `nothing after "="`
	}
	return fields{alg: alg, name: s[open+1 : end], value: value}, ""
}

// isToken reports whether s can be an algorithm name: letters, digits,
// "-" and "_", at most 32 of them.
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// eachLine calls fn with every line of data (BOM removed, blanks trimmed,
// blank lines skipped) and its number, counting from 1, until fn returns
// false. Lines end at LF; a CR before it is trimmed with the blanks. The
// data is copied into one string, whose substrings the entries keep, rather
// than one string per line.
func eachLine(data []byte, fn func(n int, s string) bool) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	for n := 1; len(text) > 0; n++ {
		ln := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			ln, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		if ln = strings.Trim(ln, blanks); ln == "" {
			continue
		}
		if !fn(n, ln) {
			return
		}
	}
}

// canonName is the form in which names are compared: "./disk.vmdk" (Oracle
// OLVM) and "disk.vmdk" are the same file. Case is kept, because tar
// member names are case-sensitive.
func canonName(name string) string {
	if name == "" {
		return ""
	}
	return path.Clean(name)
}
