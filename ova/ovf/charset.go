package ovf

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// sniffEncoding looks at the first bytes for UTF-16 (with or without a byte
// order mark, as XML 1.0 appendix F describes) and returns a reader of
// UTF-8, without a UTF-8 byte order mark. Everything else is returned as is: UTF-8, or an 8-bit encoding
// the declaration names, which charsetReader handles.
func sniffEncoding(r io.Reader, p *parser) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case len(head) >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF:
		// encoding/xml would return a UTF-8 byte order mark as text
		// before the root, which XML does not allow anywhere else.
		br.Discard(3)
		return br, nil
	case len(head) >= 2 && head[0] == 0xFF && head[1] == 0xFE:
		br.Discard(2)
		p.utf16 = true
		return &utf16Reader{r: br}, nil
	case len(head) >= 2 && head[0] == 0xFE && head[1] == 0xFF:
		br.Discard(2)
		p.utf16 = true
		return &utf16Reader{r: br, bigEndian: true}, nil
	case len(head) == 4 && head[0] == '<' && head[1] == 0 && head[2] == '?' && head[3] == 0:
		p.utf16 = true
		return &utf16Reader{r: br}, nil
	case len(head) == 4 && head[0] == 0 && head[1] == '<' && head[2] == 0 && head[3] == '?':
		p.utf16 = true
		return &utf16Reader{r: br, bigEndian: true}, nil
	}
	return br, nil
}

// charsetReader is the xml.Decoder hook for a declared encoding other than
// UTF-8. It never opens anything: it only re-reads the bytes already being
// parsed. XenCenter declares encoding="utf-16" on plain ASCII files; such
// a declaration is believed only when the bytes are UTF-16.
func (p *parser) charsetReader(label string, input io.Reader) (io.Reader, error) {
	l := strings.ToLower(strings.TrimSpace(label))
	isUTF16 := strings.HasPrefix(l, "utf-16") || strings.HasPrefix(l, "utf16") || l == "ucs-2" || l == "unicode"
	switch {
	case isUTF16 && p.utf16:
		return input, nil
	case isUTF16:
		p.warnf("declares encoding %q but its bytes are not UTF-16; read as UTF-8", label)
		return input, nil
	case p.utf16:
		p.warnf("declares encoding %q but its bytes are UTF-16; read as UTF-16", label)
		return input, nil
	case l == "us-ascii" || l == "ascii" || l == "utf8":
		return input, nil
	case l == "iso-8859-1" || l == "iso8859-1" || l == "iso_8859-1" || l == "latin1" || l == "latin-1" || l == "l1":
		return &latin1Reader{r: input}, nil
	}
	p.warnf("unsupported encoding %q; read as UTF-8", label)
	return input, nil
}

var errTruncatedUTF16 = errors.New("UTF-16 input ends inside a character")

// utf16Reader decodes UTF-16 into UTF-8 as it is read. An unpaired
// surrogate becomes U+FFFD; an odd trailing byte ends the input with
// errTruncatedUTF16.
type utf16Reader struct {
	r         *bufio.Reader
	bigEndian bool
	pending   []byte
	err       error
}

func (u *utf16Reader) unit(b []byte) uint16 {
	if u.bigEndian {
		return uint16(b[0])<<8 | uint16(b[1])
	}
	return uint16(b[1])<<8 | uint16(b[0])
}

func (u *utf16Reader) next() (rune, error) {
	var b [2]byte
	if _, err := io.ReadFull(u.r, b[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = errTruncatedUTF16
		}
		return 0, err
	}
	c := rune(u.unit(b[:]))
	if !utf16.IsSurrogate(c) {
		return c, nil
	}
	if c < 0xDC00 {
		if nb, err := u.r.Peek(2); err == nil {
			if c2 := rune(u.unit(nb)); c2 >= 0xDC00 && c2 < 0xE000 {
				u.r.Discard(2)
				return utf16.DecodeRune(c, c2), nil
			}
		}
	}
	return unicode.ReplacementChar, nil
}

func (u *utf16Reader) Read(b []byte) (int, error) {
	for len(u.pending) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		out := u.pending[:0]
		for i := 0; i < 1024; i++ {
			r, err := u.next()
			if err != nil {
				u.err = err
				break
			}
			out = utf8.AppendRune(out, r)
		}
		u.pending = out
	}
	n := copy(b, u.pending)
	u.pending = u.pending[n:]
	return n, nil
}

// latin1Reader decodes ISO-8859-1, whose bytes are the first 256 code
// points, into UTF-8.
type latin1Reader struct {
	r       io.Reader
	buf     [2048]byte
	pending []byte
}

func (l *latin1Reader) Read(b []byte) (int, error) {
	if len(l.pending) == 0 {
		n, err := l.r.Read(l.buf[:])
		if n == 0 {
			return 0, err
		}
		out := make([]byte, 0, 2*n)
		for _, c := range l.buf[:n] {
			out = utf8.AppendRune(out, rune(c))
		}
		l.pending = out
	}
	n := copy(b, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}
