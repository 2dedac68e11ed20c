package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomBytes is n bytes of reproducible noise.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return b
}

// digestLines is n valid lines naming chunk files, as a disk split into n
// chunks gives.
func digestLines(alg Algorithm, hexDigest string, n int) []byte {
	tmpl := []byte(string(alg) + "(disk.vmdk.000000000)= " + hexDigest + "\n")
	end := len(alg) + len("(disk.vmdk.000000000")
	out := make([]byte, 0, n*len(tmpl))
	for i := range n {
		out = append(out, tmpl...)
		line := out[len(out)-len(tmpl):]
		for j, v := end-1, i; v > 0; j, v = j-1, v/10 {
			line[j] = byte('0' + v%10)
		}
	}
	return out
}

// TestParseHostile feeds manifests built to exhaust memory or time, or to
// confuse the line grammar. Each must parse in bounded memory with a
// bounded list of warnings. Inputs are built one at a time to keep the
// test's own memory low.
func TestParseHostile(t *testing.T) {
	valid := "SHA1(a)= " + sha1Hex + "\n"
	tests := []struct {
		name     string
		in       func() []byte
		entries  int
		lastWarn string // what the last warning holds, or "" for no check
		minWarns int    // at least this many warnings
		noWarns  bool
		err      error
	}{
		{"8 MiB of random bytes", func() []byte { return randomBytes(8 << 20) },
			0, "more warnings not shown", MaxWarnings + 1, false, nil},
		{"4 MiB of junk lines full of ( ) =", func() []byte {
			return bytes.Repeat([]byte("SHA1 (x) y = z !\"#$%&'*+,-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVW\n"), 4<<20/70)
		}, 0, "more warnings not shown", MaxWarnings + 1, false, nil},
		{"a valid line amid 8 MiB of junk", func() []byte {
			j := randomBytes(8 << 20)
			return append(append(j[:4<<20:4<<20], "\n"+valid...), j[4<<20:]...)
		}, 1, "more warnings not shown", MaxWarnings + 1, false, nil},
		{"a 1 MiB digest", func() []byte { return []byte("SHA1(a)= " + strings.Repeat("0", 1<<20)) },
			0, "has 1048576 characters, want 40 hex digits", 1, false, nil},
		{"a 4 MiB name", func() []byte { return []byte("SHA1(" + strings.Repeat("n", 4<<20) + ")= " + sha1Hex) },
			1, "", 0, true, nil},
		{"a 20 MB single line", func() []byte { return bytes.Repeat([]byte("A"), 20_000_000) },
			0, "", 0, false, ErrTooLarge},
		{"exactly the size bound", func() []byte { return []byte(valid + strings.Repeat(" ", MaxManifestSize-len(valid))) },
			1, "", 0, true, nil},
		{"one byte over the size bound", func() []byte { return []byte(valid + strings.Repeat(" ", MaxManifestSize-len(valid)+1)) },
			0, "", 0, false, ErrTooLarge},
		{"NUL bytes everywhere", func() []byte { return bytes.Repeat([]byte("SHA1(\x00)= \x00\n\x00(\x00)\x00=\x00\n"), 10_000) },
			0, "more warnings not shown", MaxWarnings + 1, false, nil},
		{"NUL-padded valid line", func() []byte { return []byte("\x00\x00\x00\n" + valid + "\x00\x00") },
			1, `not a digest line (no "("): "\x00\x00"`, 2, false, nil},
		{"100 000 entries", func() []byte { return digestLines(SHA256, sha256Hex, 100_000) },
			100_000, "", 0, true, nil},
		{"more entries than MaxEntries", func() []byte { return digestLines(MD5, md5Hex, MaxEntries+5) },
			MaxEntries, "line 131073: this and later lines ignored: the manifest lists more than 131072 digests", 1, false, nil},
		{"a million parentheses", func() []byte {
			return []byte("SHA1" + strings.Repeat("(", 1<<20) + strings.Repeat(")", 1<<20) + "= " + sha1Hex)
		}, 1, "", 0, true, nil},
		{"a million blank lines", func() []byte { return bytes.Repeat([]byte("\r\n"), 1<<20) },
			0, "", 0, true, nil},
		{"a million one-byte lines", func() []byte { return bytes.Repeat([]byte("x\n"), 1<<20) },
			0, "1048476 more warnings not shown", MaxWarnings + 1, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(bytes.NewReader(tc.in()))
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.HasPrefix(err.Error(), "manifest: file too large: the manifest has more than 16777216 bytes") {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Entries) != tc.entries {
				t.Errorf("%d entries, want %d", len(m.Entries), tc.entries)
			}
			if len(m.Warnings) > MaxWarnings+1 || len(m.Warnings) < tc.minWarns || tc.noWarns && len(m.Warnings) > 0 {
				t.Errorf("%d warnings (%.200q), want %d to %d", len(m.Warnings), m.Warnings, tc.minWarns, MaxWarnings+1)
			}
			for _, w := range m.Warnings {
				if len(w) > 300 {
					t.Errorf("a warning of %d bytes: %.100q...", len(w), w)
				}
			}
			if tc.lastWarn != "" && (len(m.Warnings) == 0 || !strings.Contains(m.Warnings[len(m.Warnings)-1], tc.lastWarn)) {
				t.Errorf("warnings %.300q, want the last to hold %q", m.Warnings, tc.lastWarn)
			}
		})
	}
}

// TestLookupLarge checks that a 100 000-entry manifest finds every name,
// through the index Parse builds.
func TestLookupLarge(t *testing.T) {
	m, err := Parse(bytes.NewReader(digestLines(SHA256, sha256Hex, 100_000)))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range m.Entries {
		if got, ok := m.Lookup(e.Name); !ok || got.Line != i+1 {
			t.Fatalf("entry %d: Lookup(%q) = %+v %v", i, e.Name, got, ok)
		}
	}
	for _, i := range []int{0, 9, 10, 12345, 99_999} {
		if e, ok := m.Lookup(fmt.Sprintf("./disk.vmdk.%09d", i)); !ok || e.Line != i+1 {
			t.Fatalf("entry %d: %+v %v", i, e, ok)
		}
	}
	if _, ok := m.Lookup("disk.vmdk.000100000"); ok {
		t.Fatal("an entry past the end is found")
	}
}
