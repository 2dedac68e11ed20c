package manifest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

const (
	sha1Hex   = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	sha256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	sha512Hex = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
	md5Hex    = "d41d8cd98f00b204e9800998ecf8427e"
)

// want is one entry Parse must produce.
type wantEntry struct {
	alg  Algorithm
	name string
	hex  string
	line int
}

// manifestCases are the grammar table; the fuzz target starts from them.
var manifestCases = []struct {
	name  string
	in    string
	want  []wantEntry
	warns []string // substrings, one per expected warning, in order
}{
	{"canonical", "SHA1(a.ovf)= " + sha1Hex + "\n",
		[]wantEntry{{SHA1, "a.ovf", sha1Hex, 1}}, nil},
	{"IPRT blanks", "SHA256 (disk 1.vmdk) = " + sha256Hex + "\n",
		[]wantEntry{{SHA256, "disk 1.vmdk", sha256Hex, 1}}, nil},
	{"no blank after =", "SHA1(a.ovf)=" + sha1Hex,
		[]wantEntry{{SHA1, "a.ovf", sha1Hex, 1}}, nil},
	{"blank before = only", "SHA1(a.ovf) =" + sha1Hex,
		[]wantEntry{{SHA1, "a.ovf", sha1Hex, 1}}, nil},
	{"tabs", "SHA1\t(a.ovf)\t=\t" + sha1Hex,
		[]wantEntry{{SHA1, "a.ovf", sha1Hex, 1}}, nil},
	{"CRLF, blank lines, trailing blanks",
		"\r\nSHA1(a.ovf)= " + sha1Hex + "  \r\n\r\n   \r\nSHA256(b.vmdk)= " + sha256Hex + "\t\r\n",
		[]wantEntry{{SHA1, "a.ovf", sha1Hex, 2}, {SHA256, "b.vmdk", sha256Hex, 5}}, nil},
	{"BOM", "\xef\xbb\xbfSHA1(a.ovf)= " + sha1Hex + "\n",
		[]wantEntry{{SHA1, "a.ovf", sha1Hex, 1}}, nil},
	{"upper-case hex", "SHA1(a.ovf)= " + strings.ToUpper(sha1Hex),
		[]wantEntry{{SHA1, "a.ovf", sha1Hex, 1}}, nil},
	{"mixed-case hex", "SHA1(a.ovf)= DA39a3EE5e6b4b0d3255bfef95601890afd80709",
		[]wantEntry{{SHA1, "a.ovf", sha1Hex, 1}}, nil},
	{"every algorithm and spelling",
		"SHA1(a)= " + sha1Hex + "\nsha256(b)= " + sha256Hex + "\nSHA512(c)= " + sha512Hex + "\nMD5(d)= " + md5Hex +
			"\nSHA-1(e)= " + sha1Hex + "\nSHA-256(f)= " + sha256Hex + "\nSha-512(g)= " + sha512Hex + "\nmd5(h)= " + md5Hex,
		[]wantEntry{{SHA1, "a", sha1Hex, 1}, {SHA256, "b", sha256Hex, 2}, {SHA512, "c", sha512Hex, 3}, {MD5, "d", md5Hex, 4},
			{SHA1, "e", sha1Hex, 5}, {SHA256, "f", sha256Hex, 6}, {SHA512, "g", sha512Hex, 7}, {MD5, "h", md5Hex, 8}}, nil},
	{"names with blanks, parentheses and =",
		"SHA1(my disk (copy).vmdk)= " + sha1Hex + "\nSHA1(a=b).ovf)= " + sha1Hex + "\nSHA1 (x) (y) = " + sha1Hex,
		[]wantEntry{{SHA1, "my disk (copy).vmdk", sha1Hex, 1}, {SHA1, "a=b).ovf", sha1Hex, 2}, {SHA1, "x) (y", sha1Hex, 3}}, nil},
	{"chunk names", "SHA256(disk.vmdk.000000000)= " + sha256Hex + "\nSHA256(disk.vmdk.000000001)= " + sha256Hex,
		[]wantEntry{{SHA256, "disk.vmdk.000000000", sha256Hex, 1}, {SHA256, "disk.vmdk.000000001", sha256Hex, 2}}, nil},
	{"same file under two algorithms", "SHA1(a)= " + sha1Hex + "\nSHA256(a)= " + sha256Hex,
		[]wantEntry{{SHA1, "a", sha1Hex, 1}, {SHA256, "a", sha256Hex, 2}}, nil},
	{"garbage lines", "hello world\nSHA1(a)= " + sha1Hex + "\n# comment\n(x)= 00\nSHA1 a = " + sha1Hex + "\nSHA1(b " + sha1Hex,
		[]wantEntry{{SHA1, "a", sha1Hex, 2}},
		[]string{`line 1: not a digest line (no "("): "hello world"`, "line 3: not a digest line", "line 4: not a digest line (no algorithm name",
			`line 5: not a digest line (no "(")`, `line 6: not a digest line (no ")" after the name)`}},
	{"no = or no value", "SHA1(a) " + sha1Hex + "\nSHA1(b)=\nSHA1(c)=   ",
		nil, []string{`line 1: not a digest line (no "=" after the name)`, `line 2: not a digest line (nothing after "=")`, `line 3: not a digest line (nothing after "=")`}},
	{"wrong digest lengths", "SHA1(a)= " + sha256Hex + "\nSHA256(b)= " + sha1Hex + "\nMD5(c)= " + md5Hex[:31],
		nil, []string{"line 1: SHA1 digest for \"a\" has 64 characters, want 40", "line 2: SHA256 digest for \"b\" has 40 characters, want 64", "line 3: MD5 digest for \"c\" has 31 characters, want 32"}},
	{"not hex", "SHA1(a)= " + strings.Repeat("g", 40) + "\nSHA1(b)= " + sha1Hex[:20] + " " + sha1Hex[21:],
		nil, []string{"line 1: SHA1 digest for \"a\" is not hexadecimal", "line 2: SHA1 digest for \"b\" is not hexadecimal"}},
	{"unknown algorithms", "SIZE(disk.vmdk)= 1234\nSHA384(a)= 00\nCRC32(b)= 1234abcd\nSHA1(c)= " + sha1Hex,
		[]wantEntry{{SHA1, "c", sha1Hex, 4}},
		[]string{`line 1: SIZE entry for "disk.vmdk" skipped`, `line 2: unknown digest algorithm "SHA384"`, `line 3: unknown digest algorithm "CRC32"`}},
	{"empty name and NUL", "SHA1()= " + sha1Hex + "\nSHA1(a\x00b)= " + sha1Hex + "\n\x00\x00\x00\n",
		nil, []string{"line 1: empty file name", `line 2: file name "a\x00b" holds a NUL byte`, `line 3: not a digest line (no "("): "\x00\x00\x00"`}},
	{"duplicates", "SHA1(a)= " + sha1Hex + "\nSHA1(./a)= " + sha1Hex + "\nSHA1(a)= " + strings.Repeat("0", 40),
		[]wantEntry{{SHA1, "a", sha1Hex, 1}},
		[]string{`line 2: SHA1("./a") repeats line 1`, `line 3: SHA1("a") contradicts line 1; the digest on line 1 is kept`}},
	{"empty", "", nil, nil},
	{"only blanks", "\r\n \n\t\n\xef\xbb\xbf", nil, []string{`line 4: not a digest line (no "("): "\ufeff"`}},
	{"no final newline after CR", "SHA1(a)= " + sha1Hex + "\r",
		[]wantEntry{{SHA1, "a", sha1Hex, 1}}, nil},
}

func TestParse(t *testing.T) {
	for _, tc := range manifestCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Raw, []byte(tc.in)) {
				t.Errorf("Raw is not the exact input")
			}
			if len(m.Entries) != len(tc.want) {
				t.Fatalf("got %d entries %+v, want %d; warnings %q", len(m.Entries), m.Entries, len(tc.want), m.Warnings)
			}
			for i, w := range tc.want {
				e := m.Entries[i]
				if e.Algorithm != w.alg || e.Name != w.name || hex.EncodeToString(e.Digest) != w.hex || e.Line != w.line {
					t.Errorf("entry %d = {%s %q %x line %d}, want %+v", i, e.Algorithm, e.Name, e.Digest, e.Line, w)
				}
			}
			if len(m.Warnings) != len(tc.warns) {
				t.Fatalf("got warnings %q, want %d matching %q", m.Warnings, len(tc.warns), tc.warns)
			}
			for i, w := range tc.warns {
				if !strings.Contains(m.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, m.Warnings[i], w)
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	in := "SHA1(a)= " + sha1Hex + "\nSHA512(a)= " + sha512Hex + "\nSHA256(a)= " + sha256Hex +
		"\nMD5(./b)= " + md5Hex + "\nSHA1(dir//c)= " + sha1Hex + "\n"
	m, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		found   bool
		alg     Algorithm
		all     int
		comment string
	}{
		{"a", true, SHA512, 3, "strongest of three algorithms"},
		{"./a", true, SHA512, 3, "./ prefix in the query"},
		{"b", true, MD5, 1, "./ prefix in the manifest"},
		{"dir/c", true, SHA1, 1, "doubled slash in the manifest"},
		{"A", false, "", 0, "names are case-sensitive, like tar members"},
		{"missing", false, "", 0, "absent"},
	}
	for _, tc := range tests {
		e, ok := m.Lookup(tc.name)
		if ok != tc.found || e.Algorithm != tc.alg || len(m.LookupAll(tc.name)) != tc.all {
			t.Errorf("%s: Lookup(%q) = %v %v, LookupAll has %d; want %v %v %d", tc.comment, tc.name, e.Algorithm, ok,
				len(m.LookupAll(tc.name)), tc.found, tc.alg, tc.all)
		}
	}

	// A manifest built by hand, or grown after Parse, is scanned instead.
	m.Entries = append(m.Entries, Entry{Algorithm: SHA1, Name: "late", Digest: make([]byte, 20)})
	if _, ok := m.Lookup("late"); !ok {
		t.Error("an entry appended after Parse is not found")
	}
	hand := &Manifest{Entries: []Entry{{Algorithm: SHA256, Name: "x", Digest: make([]byte, 32)}}}
	if e, ok := hand.Lookup("./x"); !ok || e.Algorithm != SHA256 {
		t.Error("a hand-built manifest is not searched")
	}
	var none *Manifest
	if _, ok := none.Lookup("x"); ok {
		t.Error("a nil manifest finds something")
	}
}

func TestAlgorithm(t *testing.T) {
	tests := []struct {
		in   string
		want Algorithm
		ok   bool
		size int
	}{
		{"SHA1", SHA1, true, 20}, {"sha-1", SHA1, true, 20}, {"SHA256", SHA256, true, 32}, {"SHA-256", SHA256, true, 32},
		{"Sha512", SHA512, true, 64}, {"SHA-512", SHA512, true, 64}, {"MD5", MD5, true, 16}, {"md5", MD5, true, 16},
		{"SIZE", "", false, 0}, {"SHA384", "", false, 0}, {"SHA2-256", "", false, 0}, {"", "", false, 0},
		{strings.Repeat("SHA1", 10), "", false, 0},
	}
	for _, tc := range tests {
		a, ok := ParseAlgorithm(tc.in)
		if a != tc.want || ok != tc.ok || a.Size() != tc.size {
			t.Errorf("ParseAlgorithm(%q) = %q %v size %d, want %q %v %d", tc.in, a, ok, a.Size(), tc.want, tc.ok, tc.size)
		}
		if h := a.New(); (h != nil) != tc.ok || h != nil && h.Size() != tc.size {
			t.Errorf("%q.New() = %v", a, h)
		}
	}
	// The digests of the empty string, computed by each New.
	for a, want := range map[Algorithm]string{SHA1: sha1Hex, SHA256: sha256Hex, SHA512: sha512Hex, MD5: md5Hex} {
		if got := hex.EncodeToString(a.New().Sum(nil)); got != want {
			t.Errorf("%s of nothing = %s, want %s", a, got, want)
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(failingReader{})
	if err == nil || errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "manifest: reading the manifest: disk on fire") {
		t.Fatalf("Parse of a failing reader: %v", err)
	}
	_, err = ParseCert(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "manifest: reading the certificate file: disk on fire") {
		t.Fatalf("ParseCert of a failing reader: %v", err)
	}
}
