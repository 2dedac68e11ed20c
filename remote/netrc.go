package remote

import (
	"fmt"
	"os"
	"strings"
)

// netrcEntry is one "machine" (or the "default") of a netrc file.
type netrcEntry struct {
	machine   string // empty for the default entry
	isDefault bool
	login     string
	password  string
	account   string
}

// netrcError is a netrc syntax error. It names the line and never the
// token: a token in a netrc file may well be a password.
type netrcError struct {
	line int
	msg  string
}

func (e *netrcError) Error() string { return fmt.Sprintf("netrc: line %d: %s", e.line, e.msg) }

// readNetrc parses the netrc file at path.
func readNetrc(path string) ([]netrcEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	entries, err := parseNetrc(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return entries, nil
}

// parseNetrc parses the netrc format as ftp, curl and Python read it:
// whitespace-separated tokens; "machine NAME" or "default" starts an entry,
// "login", "password" and "account" set its fields, "macdef NAME" starts a
// macro whose body runs to the next empty line and is skipped. Like curl it
// also takes double-quoted tokens (with \" \\ \n \r \t escapes) so a
// password may hold spaces, and "#" comments to the end of the line. Unknown
// keywords are skipped, so a file written for another tool still works;
// what cannot be read unambiguously (a value missing, an open quote, a
// login before any machine) is an error rather than a guess.
func parseNetrc(data []byte) ([]netrcEntry, error) {
	t := netrcTokenizer{data: data, line: 1}
	var entries []netrcEntry
	for {
		tok, ok, err := t.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return entries, nil
		}
		switch tok {
		case "machine":
			name, err := t.value("machine")
			if err != nil {
				return nil, err
			}
			entries = append(entries, netrcEntry{machine: name})
		case "default":
			entries = append(entries, netrcEntry{isDefault: true})
		case "login", "password", "account":
			line := t.line
			v, err := t.value(tok)
			if err != nil {
				return nil, err
			}
			if len(entries) == 0 {
				return nil, &netrcError{line, tok + " before any machine or default"}
			}
			e := &entries[len(entries)-1]
			switch tok {
			case "login":
				e.login = v
			case "password":
				e.password = v
			default:
				e.account = v
			}
		case "macdef":
			if _, err := t.value("macdef"); err != nil {
				return nil, err
			}
			t.skipMacro()
		}
	}
}

type netrcTokenizer struct {
	data []byte
	pos  int
	line int
}

func isNetrcSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// next returns the next token, or ok == false at the end of the input.
func (t *netrcTokenizer) next() (tok string, ok bool, err error) {
	for t.pos < len(t.data) {
		c := t.data[t.pos]
		switch {
		case c == '\n':
			t.line++
			t.pos++
		case isNetrcSpace(c):
			t.pos++
		case c == '#':
			for t.pos < len(t.data) && t.data[t.pos] != '\n' {
				t.pos++
			}
		case c == '"':
			return t.quoted()
		default:
			start := t.pos
			for t.pos < len(t.data) && !isNetrcSpace(t.data[t.pos]) {
				t.pos++
			}
			return string(t.data[start:t.pos]), true, nil
		}
	}
	return "", false, nil
}

func (t *netrcTokenizer) quoted() (string, bool, error) {
	line := t.line
	t.pos++ // the opening quote
	var b strings.Builder
	for t.pos < len(t.data) {
		c := t.data[t.pos]
		t.pos++
		switch c {
		case '"':
			return b.String(), true, nil
		case '\n':
			t.line++
			b.WriteByte(c)
		case '\\':
			if t.pos == len(t.data) {
				return "", false, &netrcError{line, "unterminated quoted token"}
			}
			e := t.data[t.pos]
			t.pos++
			switch e {
			case 'n':
				e = '\n'
			case 'r':
				e = '\r'
			case 't':
				e = '\t'
			case '\n':
				t.line++
			}
			b.WriteByte(e)
		default:
			b.WriteByte(c)
		}
	}
	return "", false, &netrcError{line, "unterminated quoted token"}
}

// value reads the token a keyword needs.
func (t *netrcTokenizer) value(keyword string) (string, error) {
	line := t.line
	v, ok, err := t.next()
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &netrcError{line, keyword + " without a value"}
	}
	return v, nil
}

// skipMacro skips the rest of the macdef line and the macro body after it,
// up to and including the first empty (or blank) line.
func (t *netrcTokenizer) skipMacro() {
	for t.pos < len(t.data) && t.data[t.pos] != '\n' {
		t.pos++
	}
	for t.pos < len(t.data) {
		t.pos++ // the newline ending the previous line
		t.line++
		start := t.pos
		for t.pos < len(t.data) && t.data[t.pos] != '\n' {
			t.pos++
		}
		if strings.TrimLeft(string(t.data[start:t.pos]), " \t\r\f\v") == "" {
			return
		}
	}
}

// netrcLookup finds the credentials for host: the first machine entry
// that names it (case-insensitively, as host names are), else the default
// entry. An entry with neither login nor password gives nothing.
func netrcLookup(entries []netrcEntry, host string) (netrcEntry, bool) {
	var def *netrcEntry
	for i := range entries {
		e := &entries[i]
		if e.isDefault {
			if def == nil {
				def = e
			}
			continue
		}
		if strings.EqualFold(e.machine, host) {
			return *e, e.login != "" || e.password != ""
		}
	}
	if def != nil {
		return *def, def.login != "" || def.password != ""
	}
	return netrcEntry{}, false
}
