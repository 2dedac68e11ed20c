package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// The LVM2 text format (libdm-config.c): sections `name { ... }`,
// assignments `key = value`, values that are numbers, strings in double
// quotes with backslash escapes, strings in single quotes, bare words, and
// arrays `[v, v, ...]` of those; `#` starts a comment. A section named
// twice is one section (its children appended), a key assigned twice
// keeps the last value, as LVM does.

// Limits on hostile text: LVM's own metadata nests five levels deep.
const (
	maxDepth = 32
	// maxTextSize bounds the metadata text read from a PV; LVM's default
	// metadata area is 1 MiB and real metadata a few KiB to a few MiB.
	maxTextSize = 64 << 20
)

type valueKind int

const (
	kindString valueKind = iota
	kindInt
	kindFloat
	kindArray
)

type value struct {
	kind valueKind
	str  string
	num  int64
	arr  []value // kindArray: elements, never arrays themselves
}

// node is a section (children) or an assignment (val != nil).
type node struct {
	key      string
	val      *value
	children []*node
}

func (n *node) child(key string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.key == key {
			return c
		}
	}
	return nil
}

// str returns the string value of key, and whether there is one.
func (n *node) str(key string) (string, bool) {
	c := n.child(key)
	if c == nil || c.val == nil || c.val.kind != kindString {
		return "", false
	}
	return c.val.str, true
}

// int returns the integer value of key, and whether there is one.
func (n *node) int(key string) (int64, bool) {
	c := n.child(key)
	if c == nil || c.val == nil || c.val.kind != kindInt {
		return 0, false
	}
	return c.val.num, true
}

// strings returns the strings of an array value (LVM's status flags).
func (n *node) strings(key string) []string {
	c := n.child(key)
	if c == nil || c.val == nil || c.val.kind != kindArray {
		return nil
	}
	var out []string
	for _, v := range c.val.arr {
		if v.kind == kindString {
			out = append(out, v.str)
		}
	}
	return out
}

func (n *node) sections() []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, c := range n.children {
		if c.val == nil {
			out = append(out, c)
		}
	}
	return out
}

type token int

const (
	tokEOF token = iota
	tokSectionB
	tokSectionE
	tokArrayB
	tokArrayE
	tokComma
	tokEq
	tokString // "..." with escapes, already unescaped
	tokQuoted // '...'
	tokInt
	tokFloat
	tokWord // identifier, or a bare string where a value is expected
	tokBad  // a string the text ends inside
)

type parser struct {
	s        string
	pos      int
	tok      token
	text     string // the token's text (strings unescaped)
	start    int    // where the token began, for errors
	line     int
	depth    int
	valuePos bool // the previous token lets a value come next
}

// parseConfig parses LVM2 text metadata into a root section.
func parseConfig(text string) (*node, error) {
	if len(text) > maxTextSize {
		return nil, fmt.Errorf("metadata text of %d bytes, more than %d", len(text), maxTextSize)
	}
	if i := strings.IndexByte(text, 0); i >= 0 {
		text = text[:i] // the text on disk ends with a NUL
	}
	p := &parser{s: text, line: 1}
	p.next()
	root := &node{key: "<root>"}
	for p.tok != tokEOF {
		if err := p.section(root); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("metadata text line %d: %s", p.line, fmt.Sprintf(format, args...))
}

// section parses `key { ... }` or `key = value` into parent.
func (p *parser) section(parent *node) error {
	var key string
	switch p.tok {
	case tokWord, tokString, tokQuoted:
		key = p.text
	default:
		return p.errorf("expected a name, found %q", p.tokenText())
	}
	if key == "" {
		return p.errorf("empty section name")
	}
	p.next()
	switch p.tok {
	case tokSectionB:
		if p.depth++; p.depth > maxDepth {
			return p.errorf("sections nested more than %d deep", maxDepth)
		}
		n := parent.child(key)
		if n == nil || n.val != nil {
			n = &node{key: key}
			parent.children = append(parent.children, n)
		}
		p.next()
		for p.tok != tokSectionE {
			if p.tok == tokEOF {
				return p.errorf("section %q not closed", key)
			}
			if err := p.section(n); err != nil {
				return err
			}
		}
		p.depth--
		p.next()
		return nil
	case tokEq:
		p.valuePos = true
		p.next()
		v, err := p.value()
		if err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		if n := parent.child(key); n != nil && n.val != nil {
			n.val = v
			return nil
		}
		parent.children = append(parent.children, &node{key: key, val: v})
		return nil
	default:
		return p.errorf("expected '{' or '=' after %q, found %q", key, p.tokenText())
	}
}

func (p *parser) value() (*value, error) {
	if p.tok != tokArrayB {
		v, err := p.scalar()
		if err != nil {
			return nil, err
		}
		p.next()
		return &v, nil
	}
	arr := &value{kind: kindArray}
	p.valuePos = true
	p.next()
	for p.tok != tokArrayE {
		v, err := p.scalar()
		if err != nil {
			return nil, err
		}
		arr.arr = append(arr.arr, v)
		p.next()
		if p.tok == tokComma {
			p.valuePos = true
			p.next()
		}
	}
	p.next()
	return arr, nil
}

func (p *parser) scalar() (value, error) {
	switch p.tok {
	case tokString, tokQuoted, tokWord:
		return value{kind: kindString, str: p.text}, nil
	case tokInt:
		n, err := strconv.ParseInt(p.text, 0, 64)
		if err != nil {
			return value{}, p.errorf("number %q: %v", p.text, err)
		}
		return value{kind: kindInt, num: n}, nil
	case tokFloat:
		if _, err := strconv.ParseFloat(p.text, 64); err != nil {
			return value{}, p.errorf("number %q: %v", p.text, err)
		}
		return value{kind: kindFloat, str: p.text}, nil
	case tokEOF:
		return value{}, p.errorf("text ends where a value should be")
	default:
		return value{}, p.errorf("expected a value, found %q", p.tokenText())
	}
}

func (p *parser) tokenText() string {
	t := p.s[p.start:p.pos]
	if len(t) > 40 {
		t = t[:40] + "..."
	}
	return t
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// next reads the next token, as libdm's _get_token: what follows '=', '['
// or ',' is a value (a number or a bare string), anything else a name.
func (p *parser) next() {
	values := p.valuePos
	p.valuePos = false
	// spaces and comments
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '#' {
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
			continue
		}
		if !isSpace(c) {
			break
		}
		if c == '\n' {
			p.line++
		}
		p.pos++
	}
	p.start = p.pos
	if p.pos >= len(p.s) {
		p.tok = tokEOF
		return
	}
	c := p.s[p.pos]
	if t := punctuation(c); t != tokEOF {
		p.tok = t
		p.pos++
		return
	}
	switch {
	case c == '"':
		var b strings.Builder
		p.pos++
		for p.pos < len(p.s) && p.s[p.pos] != '"' {
			if p.s[p.pos] == '\\' && p.pos+1 < len(p.s) {
				p.pos++
			}
			if p.s[p.pos] == '\n' {
				p.line++
			}
			b.WriteByte(p.s[p.pos])
			p.pos++
		}
		p.tok, p.text = tokString, b.String()
		if p.pos >= len(p.s) {
			p.tok = tokBad
			return
		}
		p.pos++
		return
	case c == '\'':
		p.pos++
		from := p.pos
		for p.pos < len(p.s) && p.s[p.pos] != '\'' {
			if p.s[p.pos] == '\n' {
				p.line++
			}
			p.pos++
		}
		p.tok, p.text = tokQuoted, p.s[from:p.pos]
		if p.pos >= len(p.s) {
			p.tok = tokBad
			return
		}
		p.pos++
		return
	case values && (isDigit(c) || c == '+' || c == '-' || c == '.'):
		p.tok = tokInt
		if c == '.' {
			p.tok = tokFloat
		}
		p.pos++
		for p.pos < len(p.s) {
			d := p.s[p.pos]
			if d == '.' && p.tok != tokFloat {
				p.tok = tokFloat
			} else if !isDigit(d) {
				break
			}
			p.pos++
		}
		p.text = p.s[p.start:p.pos]
		return
	}
	for p.pos < len(p.s) {
		d := p.s[p.pos]
		if isSpace(d) || d == '#' || d == '=' || d == '{' || d == '}' {
			break
		}
		// A bare value also ends at the array punctuation around it.
		if values && (d == ',' || d == ']') {
			break
		}
		p.pos++
	}
	p.tok, p.text = tokWord, p.s[p.start:p.pos]
	if p.pos == p.start { // a lone character no rule takes
		p.pos++
		p.text = p.s[p.start:p.pos]
	}
}

func punctuation(c byte) token {
	switch c {
	case '{':
		return tokSectionB
	case '}':
		return tokSectionE
	case '[':
		return tokArrayB
	case ']':
		return tokArrayE
	case ',':
		return tokComma
	case '=':
		return tokEq
	}
	return tokEOF
}
