package manifest

import (
	"slices"
	"strings"
	"testing"
)

func TestCoverage(t *testing.T) {
	mf := func(names ...string) *Manifest {
		var b strings.Builder
		for _, n := range names {
			b.WriteString("SHA256(" + n + ")= " + sha256Hex + "\n")
		}
		return mustParse(t, b.String())
	}
	appleDouble := func(n string) bool { return strings.HasPrefix(n[strings.LastIndexByte(n, '/')+1:], "._") }
	tests := []struct {
		name       string
		m          *Manifest
		present    []string
		descriptor string
		exclude    func(string) bool
		missing    []string
		unlisted   []string
		descUnlist bool
	}{
		{"complete, manifest and cert never listed", mf("a.ovf", "disk.vmdk"),
			[]string{"a.ovf", "a.mf", "disk.vmdk", "a.cert", "disk1.MF"}, "a.ovf", nil, nil, nil, false},
		{"listed but absent (VMware)", mf("a.ovf", "disk.vmdk", "extra.iso"),
			[]string{"a.ovf", "a.mf", "disk.vmdk"}, "a.ovf", nil, []string{"extra.iso"}, nil, false},
		{"present but unlisted (XenAdmin refuses)", mf("a.ovf"),
			[]string{"a.ovf", "disk.vmdk", "nvram"}, "a.ovf", nil, nil, []string{"disk.vmdk", "nvram"}, false},
		{"descriptor missing from the manifest (GNS3)", mf("disk.vmdk"),
			[]string{"a.ovf", "a.mf", "disk.vmdk"}, "a.ovf", nil, nil, nil, true},
		{"chunks listed by chunk name", mf("a.ovf", "disk.vmdk.000000000", "disk.vmdk.000000001"),
			[]string{"a.ovf", "disk.vmdk.000000000", "disk.vmdk.000000001", "disk.vmdk.000000002"}, "a.ovf", nil,
			nil, []string{"disk.vmdk.000000002"}, false},
		{"chunks listed by the logical name", mf("a.ovf", "disk.vmdk"),
			[]string{"a.ovf", "disk.vmdk.000000000"}, "a.ovf", nil,
			[]string{"disk.vmdk"}, []string{"disk.vmdk.000000000"}, false},
		{"./ prefixes on either side (Oracle OLVM)", mf("./a.ovf", "disk.vmdk"),
			[]string{"a.ovf", "./disk.vmdk"}, "./a.ovf", nil, nil, nil, false},
		{"excluded names", mf("a.ovf"),
			[]string{"a.ovf", "._a.ovf", "sub/._x"}, "a.ovf", appleDouble, nil, nil, false},
		{"duplicates reported once", mf("a.ovf", "gone", "./gone"),
			[]string{"a.ovf", "x", "./x", "x"}, "a.ovf", nil, []string{"gone"}, []string{"x"}, false},
		{"no manifest", nil, []string{"a.ovf", "a.mf", "d"}, "a.ovf", nil, nil, []string{"d"}, true},
		{"no descriptor given", mf("d"), []string{"d"}, "", nil, nil, nil, false},
		{"names are case-sensitive", mf("a.ovf", "Disk.vmdk"), []string{"a.ovf", "disk.vmdk"}, "a.ovf", nil,
			[]string{"Disk.vmdk"}, []string{"disk.vmdk"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Coverage(tc.m, tc.present, tc.descriptor, tc.exclude)
			if !slices.Equal(r.Missing, tc.missing) || !slices.Equal(r.Unlisted, tc.unlisted) || r.DescriptorUnlisted != tc.descUnlist {
				t.Fatalf("got %+v, want missing %q unlisted %q descriptor unlisted %v", r, tc.missing, tc.unlisted, tc.descUnlist)
			}
			complete := tc.missing == nil && tc.unlisted == nil && !tc.descUnlist
			if r.Complete() != complete {
				t.Errorf("Complete() = %v", r.Complete())
			}
			n := len(tc.missing) + len(tc.unlisted)
			if tc.descUnlist {
				n++
			}
			if w := r.Warnings(); len(w) != n {
				t.Errorf("Warnings() = %q, want %d", w, n)
			}
		})
	}

	r := Report{Missing: make([]string, 150)}
	if w := r.Warnings(); len(w) != MaxWarnings+1 || w[MaxWarnings] != "50 more warnings not shown" {
		t.Errorf("150 missing files give %d warnings", len(w))
	}
}

func mustParse(t testing.TB, s string) *Manifest {
	t.Helper()
	m, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
