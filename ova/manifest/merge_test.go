package manifest

import (
	"strings"
	"testing"
)

func mustParse(t testing.TB, s string) *Manifest {
	t.Helper()
	m, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMerge(t *testing.T) {
	zeros := strings.Repeat("0", 40)
	pkg := mustParse(t, "SHA1(pkg.ovf)= "+sha1Hex+"\nSHA1(disk1.vmdk)= "+sha1Hex+"\n")
	disk1 := mustParse(t, "SHA1(disk1.vmdk)= "+sha1Hex+"\n")
	disk2 := mustParse(t, "SHA1(disk2.vmdk)= "+sha1Hex+"\nSHA256(disk1.vmdk)= "+sha256Hex+"\n")
	conflict := mustParse(t, "SHA1(pkg.ovf)= "+zeros+"\nbad line\n")

	type got struct {
		name, from string
		line       int
	}
	tests := []struct {
		name       string
		descriptor string
		sources    []Source
		want       []got
		warns      []string
	}{
		{"virt-v2v two disks, no package manifest", "pkg.ovf",
			[]Source{{"disk1.mf", disk1}, {"disk2.mf", disk2}},
			[]got{{"disk1.vmdk", "disk1.mf", 1}, {"disk2.vmdk", "disk2.mf", 1}, {"disk1.vmdk", "disk2.mf", 2}},
			[]string{`no manifest named "pkg.mf" beside "pkg.ovf"; using "disk1.mf", "disk2.mf"`}},
		{"descriptor's manifest first whatever the order", "pkg.ovf",
			[]Source{{"disk1.mf", disk1}, {"PKG.MF", pkg}},
			[]got{{"pkg.ovf", "PKG.MF", 1}, {"disk1.vmdk", "PKG.MF", 2}},
			nil},
		{"conflict: the descriptor's manifest wins, and the source's warnings are kept", "dir/pkg.ovf",
			[]Source{{"other.mf", conflict}, {"dir/pkg.mf", pkg}},
			[]got{{"pkg.ovf", "dir/pkg.mf", 1}, {"disk1.vmdk", "dir/pkg.mf", 2}},
			[]string{`other.mf: line 2: not a digest line`, `"dir/pkg.mf" line 1 and "other.mf" line 1 give different SHA1 digests for "pkg.ovf"; the first is kept`}},
		{"not a .mf is never preferred", "pkg.ovf",
			[]Source{{"disk1.mf", disk1}, {"pkg.cert", pkg}},
			[]got{{"disk1.vmdk", "disk1.mf", 1}, {"pkg.ovf", "pkg.cert", 1}},
			[]string{`no manifest named "pkg.mf"`}},
		{"nil manifests and no descriptor", "",
			[]Source{{"a.mf", nil}, {"disk2.mf", disk2}},
			[]got{{"disk2.vmdk", "disk2.mf", 1}, {"disk1.vmdk", "disk2.mf", 2}},
			nil},
		{"nothing", "pkg.ovf", nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Merge(tc.descriptor, tc.sources...)
			if len(m.Entries) != len(tc.want) {
				t.Fatalf("entries %+v, want %+v", m.Entries, tc.want)
			}
			for i, w := range tc.want {
				e := m.Entries[i]
				if e.Name != w.name || e.Manifest != w.from || e.Line != w.line {
					t.Errorf("entry %d = %q from %q line %d, want %+v", i, e.Name, e.Manifest, e.Line, w)
				}
			}
			if len(m.Warnings) != len(tc.warns) {
				t.Fatalf("warnings %q, want %q", m.Warnings, tc.warns)
			}
			for i, w := range tc.warns {
				if !strings.Contains(m.Warnings[i], w) {
					t.Errorf("warning %d = %q, want %q", i, m.Warnings[i], w)
				}
			}
			if m.Raw != nil {
				t.Error("a merged manifest has Raw bytes")
			}
			for _, w := range tc.want {
				if _, ok := m.Lookup(w.name); !ok {
					t.Errorf("Lookup(%q) fails on the merged manifest", w.name)
				}
			}
		})
	}
}

func TestMergeBounds(t *testing.T) {
	// Two manifests of MaxEntries/2+10 digests each, under different
	// algorithms: the merge keeps MaxEntries and says how many it dropped.
	a := mustParse(t, string(digestLines(MD5, md5Hex, MaxEntries/2+10)))
	b := mustParse(t, string(digestLines(SHA1, sha1Hex, MaxEntries/2+10)))
	m := Merge("x.ovf", Source{"x.mf", a}, Source{"y.mf", b})
	if len(m.Entries) != MaxEntries || len(m.Warnings) != 1 || m.Warnings[0] != "20 entries beyond the first 131072 ignored" {
		t.Fatalf("%d entries, warnings %q", len(m.Entries), m.Warnings)
	}

	// Warnings of many sources are capped too.
	junk := mustParse(t, strings.Repeat("junk\n", 80))
	m = Merge("", Source{"1.mf", junk}, Source{"2.mf", junk})
	if len(m.Warnings) != MaxWarnings+1 || m.Warnings[MaxWarnings] != "60 more warnings not shown" {
		t.Fatalf("%d warnings, last %q", len(m.Warnings), m.Warnings[len(m.Warnings)-1])
	}
}
