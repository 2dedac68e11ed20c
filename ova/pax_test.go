package ova

import (
	"strings"
	"testing"
)

func TestPaxLine(t *testing.T) {
	for _, v := range []string{"", "a", strings.Repeat("x", 85), strings.Repeat("y", 994), strings.Repeat("z", 9990)} {
		line := paxLine("path", v)
		recs, err := parsePax([]byte(line))
		if err != nil || len(recs) != 1 || recs[0].value != v {
			t.Fatalf("paxLine(%d bytes) = %q: %v %v", len(v), line[:min(20, len(line))], recs, err)
		}
	}
}

func TestParsePax(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []paxRecord
		wantErr bool
	}{
		{"16 path=a/b/c.d\n", []paxRecord{{"path", "a/b/c.d"}}, false},
		{"13 size=1234\n14 mtime=12.5\n\x00\x00", []paxRecord{{"size", "1234"}, {"mtime", "12.5"}}, false},
		{"99 path=x\n", nil, true},
		{"9 path=xy\n", nil, true}, // no newline at the stated length
		{"x path=y\n", nil, true},
		{"8 =noke\n", nil, true},
	} {
		got, err := parsePax([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v", tc.in, err)
			continue
		}
		if !tc.wantErr && len(got) != len(tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range tc.want {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"00000001750\x00", 0o1750, false},
		{"  1750 \x00\x00\x00\x00\x00", 0o1750, false},
		{"\x00\x00\x00\x00", 0, false},
		{"\x80\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00", 2 << 32, false}, // base-256, 8 GiB
		{"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe", -2, false},      // base-256 negative
		{"\x80\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 0, true},        // overflows int64
		{"0001238\x00", 0, true},                                             // not octal
	} {
		got, err := parseNumber([]byte(tc.in))
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok, note bool
	}{
		{"disk.vmdk", "disk.vmdk", true, false},
		{"./appliance/disk.vmdk", "appliance/disk.vmdk", true, false},
		{"a//b/./c/", "a/b/c", true, false},
		{"./", "", true, false},
		{"/etc/passwd", "etc/passwd", true, true},
		{"../x", "", false, true},
		{"a/../../b", "", false, true},
		{"a/..", "", false, true},
		{"a\x00b", "", false, true},
		{strings.Repeat("n", 256), "", false, true},
		{"dir/" + strings.Repeat("n", 255), "dir/" + strings.Repeat("n", 255), true, false},
		{"..foo/bar..", "..foo/bar..", true, false},
	} {
		got, note, ok := cleanName(tc.in)
		if got != tc.want || ok != tc.ok || (note != "") != tc.note {
			t.Errorf("cleanName(%q) = %q, %q, %v; want %q, note %v, ok %v", tc.in, got, note, ok, tc.want, tc.note, tc.ok)
		}
	}
}
